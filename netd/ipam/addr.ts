// Owns IPv4 arithmetic for IPAM: parsing and validating subnets (ipaddr.js),
// address <-> uint32 conversion, and the deterministic MAC Docker derives
// from an IPv4 address (02:42:a:b:c:d). Pure functions, no state.
import ipaddr from 'ipaddr.js';
import { invalid } from '../../agent/common/errors.js';

/** A parsed IPv4 subnet: network and broadcast as uint32, prefix length. */
export interface Subnet { cidr: string; network: number; broadcast: number; prefixLen: number }

export function ipToInt(addr: string): number {
  if (!ipaddr.IPv4.isValidFourPartDecimal(addr)) throw invalid(`invalid IPv4 address: ${JSON.stringify(addr)}`);
  const b = ipaddr.IPv4.parse(addr).toByteArray();
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses "a.b.c.d/len"; the address must be the network address (as Docker requires). */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m || !ipaddr.IPv4.isValidFourPartDecimal(m[1]!) || Number(m[2]) > 32) {
    throw invalid(`invalid subnet ${JSON.stringify(cidr)}: expected an IPv4 CIDR such as 10.0.9.0/24`);
  }
  const prefixLen = Number(m[2]);
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  const addr = ipToInt(m[1]!);
  const network = (addr & mask) >>> 0;
  if (network !== addr) {
    throw invalid(`invalid subnet ${cidr}: host bits are set (did you mean ${intToIp(network)}/${prefixLen}?)`);
  }
  return { cidr, network, broadcast: (network | (~mask >>> 0)) >>> 0, prefixLen };
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.network <= b.broadcast && b.network <= a.broadcast;
}

export function contains(s: Subnet, addr: number): boolean {
  return addr >= s.network && addr <= s.broadcast;
}

/** Docker's MAC for an IPv4 address: 02:42 followed by the four address bytes. */
export function macFromIPv4(addr: string): string {
  const n = ipToInt(addr);
  const bytes = [0x02, 0x42, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
