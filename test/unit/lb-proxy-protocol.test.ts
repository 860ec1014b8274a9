// Unit tests for lb/proxy-protocol.ts: PROXY v1/v2 encoding (byte-exact where
// the spec fixes the bytes) and the parser's round trip.
import test from 'ava';
import { encodeProxyHeader, parseProxyHeader } from '../../lb/proxy-protocol.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

test('v1 TCP4 line, IPv4-mapped addresses unwrapped', (t) => {
  const h = encodeProxyHeader('v1', { srcAddr: '::ffff:192.0.2.7', srcPort: 56324, dstAddr: '10.0.0.1', dstPort: 8080 });
  t.is(h.toString('latin1'), 'PROXY TCP4 192.0.2.7 10.0.0.1 56324 8080\r\n');
});

test('v1 TCP6 line; mixed families become IPv6', (t) => {
  const h = encodeProxyHeader('v1', { srcAddr: '2001:db8::1', srcPort: 1, dstAddr: '10.0.0.1', dstPort: 2 });
  t.is(h.toString('latin1'), 'PROXY TCP6 2001:db8::1 ::ffff:a00:1 1 2\r\n');
});

test('v1 UNKNOWN when addresses are missing', (t) => {
  t.is(encodeProxyHeader('v1', {}).toString('latin1'), 'PROXY UNKNOWN\r\n');
});

test('v2 TCP over IPv4: exact bytes', (t) => {
  const h = encodeProxyHeader('v2', { srcAddr: '192.0.2.7', srcPort: 0x1234, dstAddr: '10.0.0.1', dstPort: 80 });
  t.is(h.length, 28);
  t.deepEqual(h.subarray(0, 12), SIG);
  t.is(h[12], 0x21);
  t.is(h[13], 0x11);
  t.is(h.readUInt16BE(14), 12);
  t.deepEqual([...h.subarray(16, 24)], [192, 0, 2, 7, 10, 0, 0, 1]);
  t.is(h.readUInt16BE(24), 0x1234);
  t.is(h.readUInt16BE(26), 80);
});

test('v2 TCP over IPv6 and UDP family byte', (t) => {
  const h = encodeProxyHeader('v2', { srcAddr: '2001:db8::1', srcPort: 5, dstAddr: '2001:db8::2', dstPort: 6 }, 'udp');
  t.is(h.length, 16 + 36);
  t.is(h[13], 0x22);
  t.is(h.readUInt16BE(14), 36);
});

test('v2 LOCAL when addresses are missing', (t) => {
  const h = encodeProxyHeader('v2', { srcAddr: 'nonsense' });
  t.is(h.length, 16);
  t.is(h[12], 0x20);
  t.like(parseProxyHeader(h), { version: 'v2', command: 'local', length: 16 });
});

test('round trip v1 and v2, with payload after the header', (t) => {
  for (const v of ['v1', 'v2'] as const) {
    for (const [src, dst] of [
      ['198.51.100.9', '10.1.2.3'],
      ['2001:db8::9', 'fd00::3'],
    ]) {
      const h = encodeProxyHeader(v, { srcAddr: src, srcPort: 40000, dstAddr: dst, dstPort: 443 });
      const buf = Buffer.concat([h, Buffer.from('GET / HTTP/1.1\r\n')]);
      const p = parseProxyHeader(buf);
      t.like(p, { version: v, command: 'proxy', srcAddr: src, dstAddr: dst, srcPort: 40000, dstPort: 443, length: h.length });
    }
  }
});

test('parser: partial input needs more bytes, garbage throws', (t) => {
  const v2 = encodeProxyHeader('v2', { srcAddr: '1.2.3.4', srcPort: 1, dstAddr: '5.6.7.8', dstPort: 2 });
  for (let i = 0; i < v2.length; i++) t.is(parseProxyHeader(v2.subarray(0, i)), undefined);
  t.is(parseProxyHeader(Buffer.from('PROXY TCP4 1.2')), undefined);
  t.throws(() => parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')));
  t.throws(() => parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4\r\n')));
});
