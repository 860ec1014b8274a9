// Owns address parsing for --advertise-addr / --listen-addr: IPs, host:port,
// or an interface name, with Docker's errors when no address can be chosen.
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { invalid } from './common/errors.js';

export function splitHostPort(v: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(v.trim());
  const host = m?.[1] ?? v;
  const port = m?.[2] ? Number(m[2]) : defaultPort;
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535) throw invalid(`invalid address: ${v}`);
  return { host, port };
}

function interfaceAddr(name: string): string | undefined {
  return networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.address;
}

/** the address other nodes use to reach this one */
export function resolveAdvertise(advertise: string | undefined, listenHost: string, port: number): { host: string; port: number } {
  if (advertise) {
    const byIface = interfaceAddr(advertise.split(':')[0]);
    if (byIface) return { host: byIface, port: advertise.includes(':') ? splitHostPort(advertise, port).port : port };
    const hp = splitHostPort(advertise, port);
    if (!ipaddr.isValid(hp.host)) throw invalid(`advertise address must be a non-zero IP address or network interface (with optional port number)`);
    return hp;
  }
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') return { host: listenHost, port };
  const candidates = Object.values(networkInterfaces()).flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address);
  const unique = [...new Set(candidates)];
  if (unique.length === 1) return { host: unique[0], port };
  if (unique.length === 0) return { host: '127.0.0.1', port };
  throw invalid(`could not choose an IP address to advertise since this system has multiple addresses on different interfaces (${unique.join(', ')})`);
}
