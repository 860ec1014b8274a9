// Unit tests of the DNS codec and of DnsServer.answer() without sockets:
// answers decoded by dns2 (an independent codec), truncation, FORMERR for
// QDCOUNT≠1, and a seeded fuzz of random, truncated and mutated packets.
import test from 'ava';
import { Packet } from 'dns2';
import { DnsServer, ServiceRecords, parseUpstream, resolvConfNameservers } from '../../netd/dns/index.js';
import { encodeAnswer, parseQuery, reverseName, RCODE, TYPE } from '../../netd/dns/wire.js';

function query(name: string, type: number, opts: { id?: number; edns?: number } = {}): Buffer {
  const p = new Packet();
  p.header.id = opts.id ?? 4242;
  p.header.rd = 1;
  p.questions.push({ name, type, class: Packet.CLASS.IN } as never);
  if (opts.edns) p.additionals.push({ name: '', type: Packet.TYPE.EDNS, class: opts.edns, ttl: 0, rdata: [] } as never);
  return p.toBuffer();
}

function records(): ServiceRecords {
  const r = new ServiceRecords();
  r.setNetworkRecords('n1', {
    subnet: '10.0.1.0/24',
    name: 'front',
    services: [
      { name: 'web', vip: '10.0.1.2', taskAddrs: ['10.0.1.3', '10.0.1.4'], endpointMode: 'vip' },
      { name: 'big', taskAddrs: Array.from({ length: 100 }, (_, i) => `10.0.1.${i + 100}`), endpointMode: 'dnsrr' },
    ],
    tasks: [{ name: 'web.1.abc', addr: '10.0.1.3' }],
  });
  return r;
}
const CLIENT = '10.0.1.50';
// upstream: [] → anything forwarded fails at once with SERVFAIL; no traffic leaves the process
const server = () => new DnsServer({ records: records(), upstream: [] });

function sync(r: ReturnType<DnsServer['answer']>): Buffer {
  if (!(r instanceof Buffer)) throw new Error('expected a synchronous answer');
  return r;
}

test('parseQuery reads the question, lower-cases the name, sees EDNS', (t) => {
  const p = parseQuery(query('Web.Front', TYPE.A, { id: 7, edns: 4096 }));
  t.true(p.ok);
  if (!p.ok) return;
  t.is(p.query.id, 7);
  t.is(p.query.name, 'web.front');
  t.is(p.query.qtype, TYPE.A);
  t.true(p.query.edns);
  t.is(p.query.udpLimit, 4096);
  const plain = parseQuery(query('web', TYPE.AAAA));
  t.true(plain.ok && !plain.query.edns && plain.query.udpLimit === 512);
});

test('A answer decodes with dns2: id, flags, records, TTL', (t) => {
  const res = Packet.parse(sync(server().answer(query('WEB.', TYPE.A, { id: 99 }), CLIENT)));
  t.is(res.header.id, 99);
  t.is(res.header.qr, 1);
  t.is(res.header.aa, 1);
  t.is(res.header.rd, 1);
  t.is(res.header.rcode, RCODE.NOERROR);
  t.is(res.questions[0]!.name, 'WEB');
  t.deepEqual(res.answers.map((a) => [a.type, a.address, a.ttl]), [[TYPE.A, '10.0.1.2', 1]]);
});

test('tasks., PTR, AAAA and NXDOMAIN answers', (t) => {
  const s = server();
  const tasks = Packet.parse(sync(s.answer(query('tasks.web', TYPE.A), CLIENT)));
  t.deepEqual(tasks.answers.map((a) => a.address).sort(), ['10.0.1.3', '10.0.1.4']);
  const ptr = Packet.parse(sync(s.answer(query('3.1.0.10.in-addr.arpa', TYPE.PTR), CLIENT)));
  t.deepEqual(ptr.answers.map((a) => a.domain), ['web.1.abc.front']);
  const aaaa = Packet.parse(sync(s.answer(query('web', TYPE.AAAA), CLIENT)));
  t.is(aaaa.header.rcode, RCODE.NOERROR);
  t.is(aaaa.answers.length, 0);
  const nx = Packet.parse(sync(s.answer(query('nope.front', TYPE.A), CLIENT)));
  t.is(nx.header.rcode, RCODE.NXDOMAIN);
});

test('names not ours are forwarded; with no upstream that is SERVFAIL', async (t) => {
  const s = server();
  const r = s.answer(query('example.org', TYPE.A), CLIENT);
  t.true(r instanceof Promise);
  const res = Packet.parse((await r)!);
  t.is(res.header.rcode, RCODE.SERVFAIL);
  t.is(s.stats().results.servfail, 1);
  await s.close();
});

test('an answer too big for UDP is truncated (TC, no answers); TCP gets it all', (t) => {
  const s = server();
  const udp = sync(s.answer(query('big', TYPE.A), CLIENT));
  t.true(udp.length <= 512);
  t.is(udp[2]! & 0x02, 0x02, 'TC set');
  t.is(Packet.parse(udp).answers.length, 0);
  const edns = Packet.parse(sync(s.answer(query('big', TYPE.A, { edns: 4096 }), CLIENT)));
  t.is(edns.answers.length, 0, '100 records exceed our 1232-byte UDP cap too');
  const tcp = Packet.parse(sync(s.answer(query('big', TYPE.A), CLIENT, true)));
  t.is(tcp.answers.length, 100);
});

test('QDCOUNT≠1 gets FORMERR, other opcodes NOTIMP, responses and short packets are dropped', (t) => {
  const s = server();
  const two = query('web', TYPE.A);
  two.writeUInt16BE(2, 4);
  t.is(sync(s.answer(two, CLIENT))[3]! & 0xf, RCODE.FORMERR);
  const zero = query('web', TYPE.A).subarray(0, 12);
  zero.writeUInt16BE(0, 4);
  t.is(sync(s.answer(zero, CLIENT))[3]! & 0xf, RCODE.FORMERR);
  const notify = query('web', TYPE.A);
  notify[2] = (notify[2]! & 0x87) | (4 << 3);
  t.is(sync(s.answer(notify, CLIENT))[3]! & 0xf, RCODE.NOTIMP);
  const resp = query('web', TYPE.A);
  resp[2] = resp[2]! | 0x80;
  t.is(s.answer(resp, CLIENT), undefined);
  t.is(s.answer(Buffer.alloc(5), CLIENT), undefined);
  t.true(s.stats().results.dropped >= 2);
});

test('reverseName accepts only well-formed in-addr.arpa names', (t) => {
  t.is(reverseName('4.3.2.1.in-addr.arpa'), '1.2.3.4');
  t.is(reverseName('4.3.2.in-addr.arpa'), undefined);
  t.is(reverseName('256.3.2.1.in-addr.arpa'), undefined);
  t.is(reverseName('04.3.2.1.in-addr.arpa'), undefined);
  t.is(reverseName('example.org'), undefined);
});

test('encodeAnswer PTR names survive the dns2 decoder with EDNS echoed', (t) => {
  const p = parseQuery(query('2.1.0.10.in-addr.arpa', TYPE.PTR, { edns: 1232 }));
  if (!p.ok) return t.fail();
  const res = Packet.parse(encodeAnswer(p.query, { rcode: 0, aa: true, ttl: 5, ptrs: ['a.b', 'web.front.'] }));
  t.deepEqual(res.answers.map((a) => a.domain), ['a.b', 'web.front']);
  t.is(res.additionals.filter((a) => a.type === TYPE.OPT).length, 1);
});

// Seeded PRNG (mulberry32) so a failure is reproducible.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test('fuzz: random, truncated and mutated packets never throw; good queries still answer', async (t) => {
  const s = server();
  const rand = rng(20240601);
  const seeds = [
    query('web', TYPE.A, { edns: 1232 }), query('tasks.web', TYPE.A), query('3.1.0.10.in-addr.arpa', TYPE.PTR),
    query('example.org', TYPE.MX), query('big', TYPE.ANY, { edns: 4096 }),
  ];
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 20_000; i++) {
    let msg: Buffer;
    const kind = i % 3;
    const base = seeds[i % seeds.length]!;
    if (kind === 0) {
      msg = Buffer.alloc(Math.floor(rand() * 600));
      for (let j = 0; j < msg.length; j++) msg[j] = Math.floor(rand() * 256);
    } else if (kind === 1) {
      msg = base.subarray(0, Math.floor(rand() * base.length));
    } else {
      msg = Buffer.from(base);
      const flips = 1 + Math.floor(rand() * 6);
      for (let f = 0; f < flips; f++) msg[Math.floor(rand() * msg.length)] = Math.floor(rand() * 256);
    }
    const viaTcp = rand() < 0.3;
    const r = s.answer(msg, CLIENT, viaTcp);
    if (r instanceof Promise) pending.push(r);
    else if (r) t.true(r.length >= 12 && (viaTcp || r.length <= 1232));
  }
  await Promise.all(pending);
  const ok = Packet.parse(sync(s.answer(query('web', TYPE.A), CLIENT)));
  t.deepEqual(ok.answers.map((a) => a.address), ['10.0.1.2']);
  t.true(s.stats().results.dropped > 1000);
  await s.close();
});

test('upstream addresses and resolv.conf parsing', (t) => {
  t.deepEqual(parseUpstream('10.1.2.3'), { host: '10.1.2.3', port: 53 });
  t.deepEqual(parseUpstream('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
  t.deepEqual(parseUpstream('[::1]:5353'), { host: '::1', port: 5353 });
  t.deepEqual(parseUpstream('fd00::53'), { host: 'fd00::53', port: 53 });
  t.throws(() => parseUpstream('dns.example'));
  const conf = '# comment\nsearch example\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\n  nameserver   1.1.1.1 \nnameserver bogus\noptions ndots:2\n';
  t.deepEqual(resolvConfNameservers(conf), ['10.255.255.53', 'fe80::1', '1.1.1.1']);
});
