// Owns backend selection for one published port: round robin over healthy
// backends, with passive health — a backend that failed a connect is skipped
// for a penalty that doubles per consecutive failure, and is used again once
// the penalty runs out or a connect to it succeeds. Pure logic, no sockets.

import net from 'node:net';
import type { MeshBackend } from './types.js';

export interface Backend {
  /** the addr string as the agent gave it (identity across updates) */
  readonly addr: string;
  readonly host: string;
  readonly port: number;
  /** target object for http-proxy, built once */
  readonly target: { protocol: 'http:'; host: string; port: number };
  /** epoch ms before which the backend is skipped */
  badUntil: number;
  fails: number;
}

/** "10.0.0.5" → host with defaultPort; "10.0.0.5:81", "[fd00::1]:81" → host and port; bare IPv6 → host */
export function parseBackendAddr(addr: string, defaultPort: number): { host: string; port: number } {
  const br = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  if (br) return { host: br[1], port: br[2] ? Number(br[2]) : defaultPort };
  if (net.isIPv6(addr)) return { host: addr, port: defaultPort };
  const i = addr.lastIndexOf(':');
  if (i > 0 && /^\d+$/.test(addr.slice(i + 1))) return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
  return { host: addr, port: defaultPort };
}

export class BackendPool {
  private list: Backend[] = [];
  private next = 0;

  constructor(
    private readonly penaltyMs = 2000,
    private readonly maxPenaltyFactor = 16,
    private readonly now: () => number = Date.now,
  ) {}

  /** replace the backend set; backends kept across the update keep their health state */
  update(backends: readonly MeshBackend[], targetPort: number): void {
    const old = new Map(this.list.map((b) => [`${b.addr}|${b.port}`, b]));
    const list: Backend[] = [];
    const seen = new Set<string>();
    for (const mb of backends) {
      if (!mb.healthy) continue;
      const { host, port } = parseBackendAddr(mb.addr, targetPort);
      const key = `${mb.addr}|${port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      list.push(old.get(key) ?? { addr: mb.addr, host, port, target: { protocol: 'http:', host, port }, badUntil: 0, fails: 0 });
    }
    this.list = list;
    if (this.next >= list.length) this.next = 0;
  }

  get size(): number {
    return this.list.length;
  }

  backends(): readonly Backend[] {
    return this.list;
  }

  /**
   * Next backend in round-robin order that is not penalised and not in
   * `exclude`. If every remaining one is penalised, the one whose penalty
   * ends first (trying beats refusing). undefined when nothing is left.
   */
  pick(exclude?: readonly Backend[]): Backend | undefined {
    const list = this.list;
    const n = list.length;
    if (n === 0) return undefined;
    const now = this.now();
    let fallback: Backend | undefined;
    for (let i = 0; i < n; i++) {
      const idx = (this.next + i) % n;
      const b = list[idx];
      if (exclude !== undefined && exclude.includes(b)) continue;
      if (b.badUntil <= now) {
        this.next = idx + 1 === n ? 0 : idx + 1;
        return b;
      }
      if (fallback === undefined || b.badUntil < fallback.badUntil) fallback = b;
    }
    return fallback;
  }

  /** a connect to b failed (refused, reset, timed out) */
  failed(b: Backend): void {
    b.fails++;
    const factor = Math.min(2 ** (b.fails - 1), this.maxPenaltyFactor);
    b.badUntil = this.now() + this.penaltyMs * factor;
  }

  /** a connect to b succeeded */
  succeeded(b: Backend): void {
    if (b.fails !== 0) {
      b.fails = 0;
      b.badUntil = 0;
    }
  }
}
