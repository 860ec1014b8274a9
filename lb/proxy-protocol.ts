// Owns the HAProxy PROXY protocol (v1 text, v2 binary) header that TCP mode
// sends to a backend first, carrying the real client address. parseProxyHeader
// is the receiving side (used by tests and by anything that wants to check a
// header); the spec is haproxy's doc/proxy-protocol.txt.

import ipaddr from 'ipaddr.js';
import type { ProxyProtocolVersion } from './types.js';

export interface ProxyAddresses {
  srcAddr?: string;
  srcPort?: number;
  dstAddr?: string;
  dstPort?: number;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

function toIp(a: string | undefined): Ip | undefined {
  if (a === undefined || !ipaddr.isValid(a)) return undefined;
  return ipaddr.process(a); // ::ffff:a.b.c.d → IPv4
}

/** both addresses in one family (IPv4 when both can be), or undefined */
function pair(a: ProxyAddresses): [Ip, Ip] | undefined {
  const s = toIp(a.srcAddr);
  const d = toIp(a.dstAddr);
  if (!s || !d || a.srcPort === undefined || a.dstPort === undefined) return undefined;
  if (s.kind() === d.kind()) return [s, d];
  const v6 = (x: Ip) => (x.kind() === 'ipv4' ? (x as ipaddr.IPv4).toIPv4MappedAddress() : x);
  return [v6(s), v6(d)];
}

export function encodeProxyHeader(version: ProxyProtocolVersion, a: ProxyAddresses, transport: 'tcp' | 'udp' = 'tcp'): Buffer {
  const p = pair(a);
  if (version === 'v1') {
    if (!p || transport !== 'tcp') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const fam = p[0].kind() === 'ipv4' ? 'TCP4' : 'TCP6';
    return Buffer.from(`PROXY ${fam} ${p[0].toString()} ${p[1].toString()} ${a.srcPort} ${a.dstPort}\r\n`, 'latin1');
  }
  if (!p) {
    // LOCAL command, AF_UNSPEC: backend uses the real connection endpoints
    const b = Buffer.alloc(16);
    V2_SIGNATURE.copy(b, 0);
    b[12] = 0x20;
    return b;
  }
  const v4 = p[0].kind() === 'ipv4';
  const alen = v4 ? 12 : 36;
  const b = Buffer.alloc(16 + alen);
  V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21; // version 2, PROXY
  b[13] = (v4 ? 0x10 : 0x20) | (transport === 'tcp' ? 0x01 : 0x02);
  b.writeUInt16BE(alen, 14);
  const n = v4 ? 4 : 16;
  b.set(p[0].toByteArray(), 16);
  b.set(p[1].toByteArray(), 16 + n);
  b.writeUInt16BE(a.srcPort!, 16 + 2 * n);
  b.writeUInt16BE(a.dstPort!, 18 + 2 * n);
  return b;
}

export interface ParsedProxyHeader extends ProxyAddresses {
  version: ProxyProtocolVersion;
  /** 'proxy' carries addresses; 'local' (v2) or UNKNOWN (v1) does not */
  command: 'proxy' | 'local';
  family: 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unknown';
  /** bytes the header occupies at the start of the stream */
  length: number;
}

/**
 * Parse a PROXY header at the start of buf. Returns undefined when more bytes
 * are needed, throws when buf does not start with a valid header.
 */
export function parseProxyHeader(buf: Buffer): ParsedProxyHeader | undefined {
  const sigLen = Math.min(buf.length, 12);
  if (buf.subarray(0, sigLen).equals(V2_SIGNATURE.subarray(0, sigLen))) {
    if (buf.length < 16) return undefined;
    const len = buf.readUInt16BE(14);
    if (buf.length < 16 + len) return undefined;
    if (buf[12] >> 4 !== 2) throw new Error('PROXY v2: bad version');
    const cmd = buf[12] & 0x0f;
    const fam = buf[13];
    const base = { version: 'v2' as const, length: 16 + len };
    if (cmd === 0) return { ...base, command: 'local', family: 'unknown' };
    const v4 = fam >> 4 === 1;
    const v6 = fam >> 4 === 2;
    if (!v4 && !v6) return { ...base, command: 'proxy', family: 'unknown' };
    const n = v4 ? 4 : 16;
    if (len < 2 * n + 4) throw new Error('PROXY v2: short address block');
    const ip = (o: number) => ipaddr.fromByteArray([...buf.subarray(16 + o, 16 + o + n)]).toString();
    const udp = (fam & 0x0f) === 2;
    return {
      ...base,
      command: 'proxy',
      family: `${udp ? 'udp' : 'tcp'}${v4 ? '4' : '6'}` as ParsedProxyHeader['family'],
      srcAddr: ip(0),
      dstAddr: ip(n),
      srcPort: buf.readUInt16BE(16 + 2 * n),
      dstPort: buf.readUInt16BE(18 + 2 * n),
    };
  }
  const prefix = 'PROXY ';
  const head = buf.subarray(0, Math.min(buf.length, 6)).toString('latin1');
  if (!prefix.startsWith(head)) throw new Error('not a PROXY header');
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= 107) throw new Error('PROXY v1: line too long');
    return undefined;
  }
  const parts = buf.subarray(0, end).toString('latin1').split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { version: 'v1', command: 'local', family: 'unknown', length };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) throw new Error('PROXY v1: malformed line');
  return {
    version: 'v1',
    command: 'proxy',
    family: parts[1] === 'TCP4' ? 'tcp4' : 'tcp6',
    srcAddr: parts[2],
    dstAddr: parts[3],
    srcPort: Number(parts[4]),
    dstPort: Number(parts[5]),
    length,
  };
}
