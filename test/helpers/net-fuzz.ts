// DNS fuzzer for tests, run inside a lab host (`ip netns exec HOST node net-fuzz.js
// SERVER PORT SEED COUNT`): COUNT hostile UDP datagrams from a fixed-seed PRNG
// (random bytes, truncated and bit-flipped queries, responses, pointer loops,
// oversized labels and datagrams) plus a few abusive TCP connections, paced so
// nothing is lost locally. Prints a JSON summary.
import dgram from 'node:dgram';
import net from 'node:net';

const [server = '127.0.0.1', portArg = '53', seedArg = '1', countArg = '3000'] = process.argv.slice(2);
const port = Number(portArg);
let seed = Number(seedArg) >>> 0;
/** mulberry32 */
function rnd(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number) => Math.floor(rnd() * n);
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

function query(name: string, qtype = 1): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const h = Buffer.alloc(12);
  h.writeUInt16BE(int(0x10000), 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([h, ...labels, Buffer.from([0]), tail]);
}

const NAMES = ['web', 'tasks.web', 'rr', 'web.appnet', 'example.org', 'nope'];
const kinds = [
  () => bytes(int(600)),
  () => { const q = query(NAMES[int(NAMES.length)]!); return q.subarray(0, int(q.length)); },
  () => { const q = query(NAMES[int(NAMES.length)]!, [1, 28, 12, 255, 16][int(5)]); for (let i = 0; i < 3; i++) q[int(q.length)] = int(256); return q; },
  () => { const q = query('web'); q[2] |= 0x80; return q; }, // a response
  () => { const q = query('web'); q.writeUInt16BE(int(4) + 2, 4); return q; }, // qdcount 2+
  () => { const h = query('web').subarray(0, 12); return Buffer.concat([h, Buffer.from([0xc0, 12, 0, 1, 0, 1])]); }, // pointer loop
  () => { const h = query('web').subarray(0, 12); return Buffer.concat([h, Buffer.from([200]), bytes(200), Buffer.from([0, 0, 1, 0, 1])]); },
  () => bytes(1500 + int(6000)), // oversized
  () => Buffer.concat([query('web'), bytes(int(100))]), // trailing junk / fake additional records
];

async function udp(count: number): Promise<number> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', () => undefined);
  sock.on('error', () => undefined);
  let sent = 0;
  for (let i = 0; i < count; i++) {
    const msg = kinds[int(kinds.length)]!();
    await new Promise<void>((r) => sock.send(msg, port, server, () => r()));
    sent++;
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
  }
  sock.close();
  return sent;
}

function tcpAbuse(payload: Buffer, holdMs: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: server, port });
    const done = () => { s.destroy(); resolve(); };
    s.on('connect', () => { s.write(payload); setTimeout(done, holdMs); });
    s.on('error', done);
    s.on('data', () => undefined);
  });
}

const sent = await udp(Number(countArg));
const big = Buffer.alloc(2);
big.writeUInt16BE(65535, 0);
const tcp = [
  tcpAbuse(bytes(3000), 200),
  tcpAbuse(Buffer.concat([big, bytes(100)]), 300),
  tcpAbuse(Buffer.from([0, 5, 1, 2, 3, 4, 5]), 100),
  tcpAbuse(Buffer.concat([Buffer.from([0, 20]), query('web').subarray(0, 20)]), 100),
  tcpAbuse(Buffer.alloc(0), 300),
];
await Promise.all(tcp);
console.log(JSON.stringify({ udp: sent, tcp: tcp.length }));
