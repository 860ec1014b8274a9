// Integration test of netd's DNS server with the real `dig`: service names,
// tasks., dnsrr, PTR, AAAA, scoping by client address, NXDOMAIN, forwarding
// to a second local DnsServer (UDP and the TC→TCP fallback), SERVFAIL when the
// upstream is dead, garbage UDP, and slow/half-open/pipelined TCP clients.
// Everything stays on loopback (random 127.x.y.z addresses, random ports).
import test from 'ava';
import dgram from 'node:dgram';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Packet } from 'dns2';
import { DnsServer, ServiceRecords, type Records } from '../../netd/dns/index.js';

const execFileP = promisify(execFile);
const rnd = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
// Distinct second octets: front clients, back clients, the upstream, the dead upstream.
const [A, B, U, D] = (() => {
  const s = new Set<number>();
  while (s.size < 4) s.add(rnd(20, 250));
  return [...s] as [number, number, number, number];
})();
const SERVER = `127.${A}.0.1`;
const FRONT_CLIENT = `127.${A}.1.5`;
const BACK_CLIENT = `127.${B}.1.5`;
const BIG = Array.from({ length: 80 }, (_, i) => `192.0.2.${i + 1}`);

const upstreamRecords: Records = {
  lookup: (name) =>
    name === 'example.test' ? { addrs: ['192.0.2.200'] } : name === 'big.example.test' ? { addrs: BIG } : 'nxdomain',
  reverse: () => undefined,
};

const records = new ServiceRecords();
records.setNetworkRecords('front-id', {
  subnet: `127.${A}.0.0/16`,
  name: 'front',
  services: [
    { name: 'web', vip: '10.0.1.2', taskAddrs: ['10.0.1.3', '10.0.1.4', '10.0.1.5'], endpointMode: 'vip', aliases: ['www'] },
    { name: 'rr', taskAddrs: ['10.0.1.6', '10.0.1.7'], endpointMode: 'dnsrr' },
  ],
  tasks: [{ name: 'web.1.aaaa', addr: '10.0.1.3' }, { name: 'web.2.bbbb', addr: '10.0.1.4' }, { name: 'web.3.cccc', addr: '10.0.1.5' }],
});
records.setNetworkRecords('back-id', {
  subnet: `127.${B}.0.0/16`,
  name: 'back',
  services: [{ name: 'db', vip: '10.0.2.2', taskAddrs: ['10.0.2.3'], endpointMode: 'vip' }],
  tasks: [],
});

let port = 0;
let deadPort = 0;
let deadUpstreamPort = 0;
let main: DnsServer;
let upstream: DnsServer;
let dead: DnsServer;

test.before(async () => {
  upstream = new DnsServer({ records: upstreamRecords, upstream: [] });
  const upPort = await upstream.listen(`127.${U}.0.1`, 0);
  main = new DnsServer({ records, upstream: [`127.${U}.0.1:${upPort}`], forwardTimeoutMs: 1500, tcpIdleTimeoutMs: 800 });
  port = await main.listen(SERVER, 0);
  // An upstream address where nothing answers: a port we bind and release.
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, `127.${D}.0.1`, () => r()));
  const nobody = (deadUpstreamPort = probe.address().port);
  await new Promise<void>((r) => probe.close(() => r()));
  dead = new DnsServer({ records, upstream: [`127.${D}.0.1:${nobody}`], forwardTimeoutMs: 300 });
  deadPort = await dead.listen(`127.${D}.0.2`, 0);
});

test.after.always(async () => {
  await Promise.all([main?.close(), upstream?.close(), dead?.close()]);
});

async function dig(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('dig', [`@${SERVER}`, '-p', String(port), '-b', FRONT_CLIENT, '+time=3', '+tries=1', ...args], { timeout: 20_000 });
  return stdout;
}
const lines = (out: string) => out.trim().split('\n').filter((l) => l.length > 0);
const sorted = (out: string) => lines(out).sort();
const status = (out: string) => /status: (\w+)/.exec(out)?.[1];

test('service name, alias, NAME.NETWORK, case and trailing dot → VIP', async (t) => {
  t.deepEqual(lines(await dig('web', '+short')), ['10.0.1.2']);
  t.deepEqual(lines(await dig('www', '+short')), ['10.0.1.2']);
  t.deepEqual(lines(await dig('Web.Front.', '+short')), ['10.0.1.2']);
});

test('tasks.NAME → every task; dnsrr → task addresses; task names resolve', async (t) => {
  t.deepEqual(sorted(await dig('tasks.web', '+short')), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
  t.deepEqual(sorted(await dig('rr', '+short')), ['10.0.1.6', '10.0.1.7']);
  t.deepEqual(lines(await dig('web.2.bbbb', '+short')), ['10.0.1.4']);
});

test('TCP answers the same', async (t) => {
  t.deepEqual(sorted(await dig('tasks.web', '+short', '+tcp')), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
});

test('PTR for VIP and task addresses (dig -x), over UDP and TCP', async (t) => {
  t.deepEqual(lines(await dig('-x', '10.0.1.2', '+short')), ['web.front.']);
  t.deepEqual(lines(await dig('-x', '10.0.1.5', '+short', '+tcp')), ['web.3.cccc.front.']);
});

test('AAAA for our names: NOERROR and no answers; unknown NAME.NETWORK: NXDOMAIN', async (t) => {
  const aaaa = await dig('web', 'AAAA');
  t.is(status(aaaa), 'NOERROR');
  t.regex(aaaa, /ANSWER: 0,/);
  t.is(status(await dig('nothere.front')), 'NXDOMAIN');
});

test('names are scoped to the client network', async (t) => {
  const { stdout } = await execFileP('dig', [`@${SERVER}`, '-p', String(port), '-b', BACK_CLIENT, '+time=3', '+tries=1', 'web'], { timeout: 20_000 });
  t.is(status(stdout), 'NXDOMAIN', 'web is not on back: forwarded, and the upstream does not know it');
  const db = await execFileP('dig', [`@${SERVER}`, '-p', String(port), '-b', BACK_CLIENT, '+time=3', '+tries=1', '+short', 'db'], { timeout: 20_000 });
  t.deepEqual(lines(db.stdout), ['10.0.2.2']);
});

test('other names are forwarded to the upstream, UDP and TCP', async (t) => {
  t.deepEqual(lines(await dig('example.test', '+short')), ['192.0.2.200']);
  t.deepEqual(lines(await dig('example.test', '+short', '+tcp')), ['192.0.2.200']);
  t.is(status(await dig('nx.example.test')), 'NXDOMAIN');
  t.true((main.stats().results.forwarded ?? 0) >= 3);
});

test('a truncated upstream answer is fetched over TCP; the client retries over TCP and gets it all', async (t) => {
  const out = await dig('big.example.test', '+noedns');
  t.regex(out, /Truncated, retrying in TCP mode/);
  t.regex(out, /ANSWER: 80,/);
  t.deepEqual(sorted(await dig('big.example.test', '+short')), [...BIG].sort());
});

test('SERVFAIL when the upstream does not answer', async (t) => {
  const { stdout } = await execFileP('dig', [`@127.${D}.0.2`, '-p', String(deadPort), '+time=5', '+tries=1', 'example.test'], { timeout: 20_000 });
  t.is(status(stdout), 'SERVFAIL');
  t.is(dead.stats().results.servfail, 1);
});

test('garbage UDP packets are dropped and the server keeps answering', async (t) => {
  const before = main.stats().results.dropped;
  const sock = dgram.createSocket('udp4');
  t.teardown(() => sock.close());
  await new Promise<void>((r) => sock.bind(0, FRONT_CLIENT, () => r()));
  const good = dnsQuery('web', 1);
  for (let i = 0; i < 3000; i++) {
    const msg = i % 2 ? Buffer.from(Array.from({ length: rnd(0, 700) }, () => rnd(0, 255))) : good.subarray(0, rnd(0, good.length - 1));
    await new Promise<void>((r) => sock.send(msg, port, SERVER, () => r()));
  }
  t.deepEqual(lines(await dig('web', '+short')), ['10.0.1.2']);
  const deadline = Date.now() + 10_000;
  while (main.stats().results.dropped === before && Date.now() < deadline) await sleep(50);
  t.true(main.stats().results.dropped > before);
});

test('a slow (byte-dribbling) TCP client is cut off; others are served meanwhile', async (t) => {
  const before = main.stats().tcp.timedOut;
  const sock = net.connect({ port, host: SERVER, localAddress: FRONT_CLIENT });
  t.teardown(() => sock.destroy());
  sock.on('error', () => undefined);
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  await new Promise<void>((r) => sock.on('connect', () => r()));
  const frame = tcpFrame(dnsQuery('web', 1));
  let i = 0;
  const drip = setInterval(() => { if (i < frame.length && !sock.destroyed) sock.write(frame.subarray(i, ++i)); }, 300);
  t.teardown(() => clearInterval(drip));
  t.deepEqual(lines(await dig('web', '+short', '+tcp')), ['10.0.1.2']);
  const gone = await Promise.race([closed.then(() => true), sleep(15_000).then(() => false)]);
  t.true(gone, 'server closed the dribbling connection');
  t.true(main.stats().tcp.timedOut > before);
  t.deepEqual(lines(await dig('web', '+short', '+tcp')), ['10.0.1.2']);
});

test('pipelined TCP queries, then a half-close: all answered, then the server closes', async (t) => {
  const sock = net.connect({ port, host: SERVER, localAddress: FRONT_CLIENT });
  t.teardown(() => sock.destroy());
  sock.on('error', () => undefined);
  let data = Buffer.alloc(0);
  sock.on('data', (c: Buffer) => { data = Buffer.concat([data, c]); });
  const ended = new Promise<void>((r) => sock.on('end', () => r()));
  await new Promise<void>((r) => sock.on('connect', () => r()));
  sock.end(Buffer.concat([tcpFrame(dnsQuery('web', 1, 1)), tcpFrame(dnsQuery('example.test', 1, 2)), tcpFrame(dnsQuery('-x', 1, 3).subarray(0, 5)), tcpFrame(dnsQuery('tasks.web', 1, 4))]));
  const done = await Promise.race([ended.then(() => true), sleep(15_000).then(() => false)]);
  t.true(done, 'server ended the connection after answering');
  const answers = new Map<number, string[]>();
  for (let off = 0; off + 2 <= data.length; ) {
    const len = data.readUInt16BE(off);
    const p = Packet.parse(data.subarray(off + 2, off + 2 + len));
    answers.set(p.header.id, p.answers.map((a) => a.address ?? '').sort());
    off += 2 + len;
  }
  t.deepEqual(answers.get(1), ['10.0.1.2']);
  t.deepEqual(answers.get(2), ['192.0.2.200']);
  t.false(answers.has(3), 'the cut-short message is dropped');
  t.deepEqual(answers.get(4), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
});

test('several listen addresses; unlisten frees one; an upstream that does not answer is skipped for the next', async (t) => {
  const recs = new ServiceRecords();
  recs.setNetworkRecords('n', { subnet: '127.0.0.0/8', services: [{ name: 'one', vip: '10.9.0.2', taskAddrs: [], endpointMode: 'vip' }], tasks: [] });
  const upPort = upstream.addresses()[0]!.port;
  // first upstream: a port where nothing listens (the dead server's upstream), then the real one
  const s = new DnsServer({ records: recs, upstream: [`127.${D}.0.1:${deadUpstreamPort}`, `127.${U}.0.1:${upPort}`], forwardTimeoutMs: 2000 });
  t.teardown(() => s.close());
  const p1 = await s.listen(`127.${D}.0.3`, 0);
  await t.throwsAsync(() => s.listen(`127.${D}.0.3`, 0));
  const p2 = await s.listen(`127.${D}.0.4`, 0);
  const ask = async (addr: string, p: number, name: string) =>
    (await execFileP('dig', [`@${addr}`, '-p', String(p), '+time=4', '+tries=1', '+short', name], { timeout: 20_000 })).stdout;
  t.deepEqual(lines(await ask(`127.${D}.0.3`, p1, 'one')), ['10.9.0.2']);
  t.deepEqual(lines(await ask(`127.${D}.0.4`, p2, 'one')), ['10.9.0.2']);
  t.deepEqual(lines(await ask(`127.${D}.0.4`, p2, 'example.test')), ['192.0.2.200'], 'answered by the second upstream');
  await s.unlisten(`127.${D}.0.3`);
  t.deepEqual(s.addresses().map((a) => a.addr), [`127.${D}.0.4`]);
  const again = await s.listen(`127.${D}.0.3`, p1);
  t.is(again, p1, 'the address and port are free again');
});

function dnsQuery(name: string, type: number, id = 77): Buffer {
  const p = new Packet();
  p.header.id = id;
  p.header.rd = 1;
  p.questions.push({ name, type, class: 1 } as never);
  return p.toBuffer();
}
function tcpFrame(msg: Buffer): Buffer {
  const out = Buffer.alloc(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
