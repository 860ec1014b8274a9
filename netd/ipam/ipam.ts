// Owns address management for overlay networks: carving subnets out of the
// default pool (10.0.0.0/8 in /24s unless the user gives --subnet), validating
// user subnets and gateways, and handing out / taking back addresses inside a
// subnet. Pure bookkeeping: no kernel, no store; state round-trips as plain
// JSON (toJSON / constructor) so a manager can keep it in its store.
import { conflict, invalid, notFound } from '../../agent/common/errors.js';
import { contains, intToIp, ipToInt, overlaps, parseSubnet, type Subnet } from './addr.js';

export interface IpamOptions {
  /** pools subnets are carved from; default ['10.0.0.0/8'] */
  pools?: string[];
  /** prefix length of carved subnets; default 24 */
  subnetSize?: number;
  /** subnets in use elsewhere (host networks, the lab underlay): never carved, user subnets may not overlap */
  reserved?: string[];
}

/** What the user asked for (Docker's IPAMOptions.Configs[0]). */
export interface SubnetRequest { subnet?: string; gateway?: string; range?: string }
/** What a network got. */
export interface SubnetLease { subnet: string; gateway: string; range?: string }

/** Plain-JSON state of one network's pool. */
export interface NetworkPoolState extends SubnetLease { allocated: string[]; cursor?: string }
export interface IpamState { networks: Record<string, NetworkPoolState> }

interface Pool { lease: SubnetLease; subnet: Subnet; range: Subnet; gateway: number; used: Set<number>; cursor: number }

export class Ipam {
  private readonly nets = new Map<string, Pool>();
  private readonly pools: Subnet[];
  private readonly reserved: Subnet[];
  private readonly subnetSize: number;

  constructor(state?: IpamState, opts: IpamOptions = {}) {
    this.pools = (opts.pools ?? ['10.0.0.0/8']).map(parseSubnet);
    this.reserved = (opts.reserved ?? []).map(parseSubnet);
    this.subnetSize = opts.subnetSize ?? 24;
    if (!Number.isInteger(this.subnetSize) || this.subnetSize < 8 || this.subnetSize > 30) {
      throw invalid(`invalid subnet size /${this.subnetSize}`);
    }
    for (const [id, s] of Object.entries(state?.networks ?? {})) {
      const pool = this.makePool(s);
      for (const a of s.allocated) pool.used.add(ipToInt(a));
      if (s.cursor) pool.cursor = ipToInt(s.cursor);
      this.nets.set(id, pool);
    }
  }

  /** Gives the network a subnet and gateway; idempotent per network id. */
  allocateSubnet(networkId: string, req: SubnetRequest = {}): SubnetLease {
    const have = this.nets.get(networkId);
    if (have) return { ...have.lease };
    if (!req.subnet && (req.gateway || req.range)) throw invalid('a gateway or IP range needs a subnet (--subnet)');
    const cidr = req.subnet ?? this.carve();
    const subnet = parseSubnet(cidr);
    if (subnet.prefixLen > 30) throw invalid(`invalid subnet ${cidr}: too small, at most /30`);
    for (const r of this.reserved) {
      if (overlaps(subnet, r)) throw invalid(`invalid pool request: subnet ${cidr} overlaps with reserved subnet ${r.cidr}`);
    }
    for (const [id, p] of this.nets) {
      if (overlaps(subnet, p.subnet)) {
        throw invalid(`invalid pool request: subnet ${cidr} overlaps with subnet ${p.lease.subnet} of network ${id}`);
      }
    }
    const gateway = req.gateway ?? intToIp(subnet.network + 1);
    const pool = this.makePool({ subnet: cidr, gateway, range: req.range });
    this.nets.set(networkId, pool);
    return { ...pool.lease };
  }

  releaseSubnet(networkId: string): void {
    this.nets.delete(networkId);
  }

  subnetOf(networkId: string): SubnetLease | undefined {
    const p = this.nets.get(networkId);
    return p ? { ...p.lease } : undefined;
  }

  /**
   * Allocates an address (or exactly `requested`). Addresses are handed out
   * serially after the last one given, so a freed address is not reused at once
   * (stale ARP/neighbour entries elsewhere then do no harm).
   */
  allocateAddress(networkId: string, requested?: string): string {
    const p = this.pool(networkId);
    if (requested !== undefined) {
      const n = ipToInt(requested);
      if (!contains(p.subnet, n)) throw invalid(`address ${requested} is not in subnet ${p.lease.subnet}`);
      if (n === p.subnet.network || n === p.subnet.broadcast || n === p.gateway) {
        throw invalid(`address ${requested} is reserved in subnet ${p.lease.subnet}`);
      }
      if (p.used.has(n)) throw conflict(`address ${requested} is already in use`);
      p.used.add(n);
      return requested;
    }
    const lo = Math.max(p.range.network, p.subnet.network + 1);
    const hi = Math.min(p.range.broadcast, p.subnet.broadcast - 1);
    const size = hi - lo + 1;
    const start = p.cursor >= lo && p.cursor <= hi ? p.cursor - lo + 1 : 0;
    for (let i = 0; i < size; i++) {
      const n = lo + ((start + i) % size);
      if (n === p.gateway || p.used.has(n)) continue;
      p.used.add(n);
      p.cursor = n;
      return intToIp(n);
    }
    throw conflict(`no available addresses in subnet ${p.lease.subnet} (network ${networkId})`);
  }

  /** Frees an address; freeing an unknown address is a no-op. */
  releaseAddress(networkId: string, address: string): void {
    this.nets.get(networkId)?.used.delete(ipToInt(stripPrefix(address)));
  }

  addressesOf(networkId: string): string[] {
    return [...this.pool(networkId).used].sort((a, b) => a - b).map(intToIp);
  }

  /** "10.0.1.3" -> "10.0.1.3/24" as Docker shows NetworksAttachments.Addresses. */
  cidrOf(networkId: string, address: string): string {
    return `${address}/${this.pool(networkId).subnet.prefixLen}`;
  }

  toJSON(): IpamState {
    const networks: Record<string, NetworkPoolState> = {};
    for (const [id, p] of this.nets) {
      networks[id] = {
        ...p.lease,
        allocated: [...p.used].sort((a, b) => a - b).map(intToIp),
        ...(p.cursor ? { cursor: intToIp(p.cursor) } : {}),
      };
    }
    return { networks };
  }

  private pool(networkId: string): Pool {
    const p = this.nets.get(networkId);
    if (!p) throw notFound(`network ${networkId} has no subnet`);
    return p;
  }

  private carve(): string {
    const taken = [...this.reserved, ...[...this.nets.values()].map((p) => p.subnet)];
    const step = 2 ** (32 - this.subnetSize);
    for (const pool of this.pools) {
      if (pool.prefixLen > this.subnetSize) continue;
      for (let n = pool.network; n + step - 1 <= pool.broadcast; n += step) {
        const cand: Subnet = { cidr: '', network: n, broadcast: n + step - 1, prefixLen: this.subnetSize };
        const clash = taken.find((t) => overlaps(t, cand));
        if (clash) {
          // jump past the clashing subnet (aligned to our step) instead of walking it
          const next = Math.floor((clash.broadcast + 1) / step) * step;
          n = Math.max(n, next - step);
          continue;
        }
        return `${intToIp(n)}/${this.subnetSize}`;
      }
    }
    throw conflict('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
  }

  private makePool(s: SubnetLease): Pool {
    const subnet = parseSubnet(s.subnet);
    const gateway = ipToInt(s.gateway);
    if (!contains(subnet, gateway) || gateway === subnet.network || gateway === subnet.broadcast) {
      throw invalid(`invalid gateway ${s.gateway}: not a usable address of subnet ${s.subnet}`);
    }
    const range = s.range ? parseSubnet(s.range) : subnet;
    if (range.network < subnet.network || range.broadcast > subnet.broadcast) {
      throw invalid(`invalid IP range ${s.range}: not inside subnet ${s.subnet}`);
    }
    const lease: SubnetLease = { subnet: s.subnet, gateway: s.gateway, ...(s.range ? { range: s.range } : {}) };
    return { lease, subnet, range, gateway, used: new Set(), cursor: 0 };
  }
}

function stripPrefix(a: string): string {
  const i = a.indexOf('/');
  return i < 0 ? a : a.slice(0, i);
}
