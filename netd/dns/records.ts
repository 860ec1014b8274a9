// Owns the service-discovery record tables: what each overlay network's
// tasks may resolve (services, `tasks.` names, task names, aliases, PTR).
// Pure bookkeeping, fed by the agent with setNetworkRecords(); the DNS
// server asks it through the narrow `Records` interface.
import { isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';

/** What the DNS server asks. Names arrive lower-cased, without trailing dot. */
export interface Records {
  /**
   * A records for `name` as asked by a client at `clientAddr`.
   * undefined → not ours: forward upstream. 'nxdomain' → in our zone but no such name.
   * `addrs: []` → the name exists with no address (NOERROR, no answers).
   */
  lookup(name: string, clientAddr: string): { addrs: string[]; ttl?: number } | 'nxdomain' | undefined;
  /** PTR names for `addr` (dotted quad) as asked by `clientAddr`; undefined → forward. */
  reverse(addr: string, clientAddr: string): string[] | undefined;
}

export interface ServiceEntry {
  name: string;
  /** the service's VIP on this network (endpointMode 'vip'; until it has one, the name answers the task addresses) */
  vip?: string;
  /** addresses of the running (and healthy) tasks on this network */
  taskAddrs: string[];
  endpointMode: 'vip' | 'dnsrr';
  /** network aliases: resolve like the service name */
  aliases?: string[];
}

export interface TaskEntry {
  /** e.g. web.1.<taskid> */
  name: string;
  addr: string;
  /** per-task network aliases, if any */
  aliases?: string[];
}

export interface NetworkRecords {
  /** CIDR of the overlay, e.g. 10.0.1.0/24: clients inside it see these names */
  subnet: string;
  /** network name: enables `SERVICE.NETWORK` style names and NXDOMAIN for unknown `*.NETWORK` */
  name?: string;
  services: ServiceEntry[];
  tasks: TaskEntry[];
}

/** fixed: answer as is; shuffled: answer in a random order each time */
interface NameEntry { addrs: string[]; shuffle: boolean }

interface NetworkTable {
  id: string;
  range: [ipaddr.IPv4 | ipaddr.IPv6, number];
  kind: 'ipv4' | 'ipv6';
  name?: string;
  names: Map<string, NameEntry>;
  ptr: Map<string, string[]>;
}

const norm = (n: string) => (n.endsWith('.') ? n.slice(0, -1) : n).toLowerCase();

export class ServiceRecords implements Records {
  readonly #ttl: number;
  readonly #ownSingleLabels: boolean;
  readonly #nets = new Map<string, NetworkTable>();
  /** clientAddr → network id ('' when in none); cleared on every change */
  #clientCache = new Map<string, string>();

  /**
   * `ownSingleLabels`: unknown single-label names (`web`) and `tasks.LABEL`
   * asked from an overlay are NXDOMAIN instead of forwarded — a service on
   * another network stays invisible and such names never leak upstream
   * (dnsmasq's domain-needed). Default false: forward them (Docker's way).
   */
  constructor(opts: { ttl?: number; ownSingleLabels?: boolean } = {}) {
    this.#ttl = opts.ttl ?? 1;
    this.#ownSingleLabels = opts.ownSingleLabels ?? false;
  }

  /** Replace everything known about one network (idempotent). Throws on a bad subnet. */
  setNetworkRecords(networkId: string, recs: NetworkRecords): void {
    const range = ipaddr.parseCIDR(recs.subnet);
    const netName = recs.name ? norm(recs.name) : undefined;
    const names = new Map<string, NameEntry>();
    const ptr = new Map<string, string[]>();
    const add = (name: string, e: NameEntry) => {
      const n = norm(name);
      if (!n) return;
      if (!names.has(n)) names.set(n, e);
      if (netName && !names.has(`${n}.${netName}`)) names.set(`${n}.${netName}`, e);
    };
    const addPtr = (addr: string, name: string) => {
      if (!ptr.has(addr)) ptr.set(addr, [netName ? `${norm(name)}.${netName}` : norm(name)]);
    };
    // Only IPv4 addresses can be A records; anything else is ignored.
    for (const s of recs.services) {
      const running = s.taskAddrs.filter((a) => isIPv4(a));
      const main: NameEntry =
        s.endpointMode === 'vip' && s.vip && isIPv4(s.vip) ? { addrs: [s.vip], shuffle: false } : { addrs: running, shuffle: true };
      add(s.name, main);
      for (const a of s.aliases ?? []) add(a, main);
      add(`tasks.${s.name}`, { addrs: running, shuffle: true });
      for (const a of s.aliases ?? []) add(`tasks.${a}`, { addrs: running, shuffle: true });
      if (s.endpointMode === 'vip' && s.vip && isIPv4(s.vip)) addPtr(s.vip, s.name);
    }
    for (const t of recs.tasks) {
      if (!isIPv4(t.addr)) continue;
      const e: NameEntry = { addrs: [t.addr], shuffle: false };
      add(t.name, e);
      for (const a of t.aliases ?? []) add(a, e);
      addPtr(t.addr, t.name);
    }
    this.#nets.set(networkId, { id: networkId, range, kind: range[0].kind(), name: netName, names, ptr });
    this.#clientCache = new Map();
  }

  removeNetwork(networkId: string): void {
    this.#nets.delete(networkId);
    this.#clientCache = new Map();
  }

  networkIds(): string[] {
    return [...this.#nets.keys()];
  }

  /** The network a client address belongs to, if any. */
  networkOf(clientAddr: string): string | undefined {
    return this.#tableFor(clientAddr)?.id;
  }

  lookup(name: string, clientAddr: string): { addrs: string[]; ttl?: number } | 'nxdomain' | undefined {
    const net = this.#tableFor(clientAddr);
    if (!net) return undefined;
    const n = norm(name);
    const e = net.names.get(n);
    if (!e) {
      if (net.name && n.endsWith(`.${net.name}`)) return 'nxdomain';
      if (this.#ownSingleLabels && n && (!n.includes('.') || /^tasks\.[^.]+$/.test(n))) return 'nxdomain';
      return undefined;
    }
    return { addrs: e.shuffle ? shuffled(e.addrs) : e.addrs, ttl: this.#ttl };
  }

  reverse(addr: string, clientAddr: string): string[] | undefined {
    return this.#tableFor(clientAddr)?.ptr.get(addr);
  }

  #tableFor(clientAddr: string): NetworkTable | undefined {
    let id = this.#clientCache.get(clientAddr);
    if (id === undefined) {
      id = '';
      let parsed: ipaddr.IPv4 | ipaddr.IPv6 | undefined;
      try {
        parsed = ipaddr.process(clientAddr); // IPv4-mapped IPv6 → IPv4
      } catch {
        parsed = undefined;
      }
      if (parsed) {
        for (const t of this.#nets.values()) {
          if (t.kind === parsed.kind() && parsed.match(t.range)) {
            id = t.id;
            break;
          }
        }
      }
      if (this.#clientCache.size > 4096) this.#clientCache.clear();
      this.#clientCache.set(clientAddr, id);
    }
    return id ? this.#nets.get(id) : undefined;
  }
}

function shuffled<T>(xs: readonly T[]): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const tmp = a[i]!;
    a[i] = a[j]!;
    a[j] = tmp;
  }
  return a;
}
