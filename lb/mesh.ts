// Owns the mesh as a whole: the agent hands it the full desired table
// (services, published ports, backends) and Mesh diffs it against what runs —
// opening listeners for new ports, closing removed ones, swapping backend sets
// in place (open connections keep going), and recreating a listener only when
// its kind (tcp/http/udp) changes. Ports it cannot bind are retried and shown
// in status(); nothing here throws at the agent for a busy port.

import { HttpListener } from './http.js';
import { Listener, listenerKind, type ListenerConfig } from './listener.js';
import type { PortStatsSnapshot } from './stats.js';
import { TcpListener } from './tcp.js';
import { resolveOptions, type MeshOptions, type MeshService, type PortStatus, type ResolvedOptions } from './types.js';
import { UdpListener } from './udp.js';

function portKey(protocol: string, port: number): string {
  return `${protocol}/${port}`;
}

export class Mesh {
  private readonly opts: ResolvedOptions;
  private readonly listeners = new Map<string, Listener>();
  private conflicts: PortStatus[] = [];
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(opts?: MeshOptions) {
    this.opts = resolveOptions(opts);
  }

  /**
   * Make the running listeners match `services`. Resolves once every new
   * listener has made its first bind attempt (see status() for the outcome).
   * Calls are applied one after another in call order.
   */
  setServices(services: MeshService[]): Promise<void> {
    const run = this.queue.then(() => this.apply(services));
    this.queue = run.catch(() => {});
    return run;
  }

  private async apply(services: MeshService[]): Promise<void> {
    if (this.closed) return;
    const desired = new Map<string, { cfg: ListenerConfig; backends: MeshService['backends'] }>();
    const conflicts: PortStatus[] = [];
    // a port already held by a service keeps it; otherwise the first in the table wins
    const holder = (key: string) => this.listeners.get(key)?.cfg.serviceId;
    const claims: { key: string; cfg: ListenerConfig; backends: MeshService['backends'] }[] = [];
    for (const svc of services) {
      for (const port of svc.ports) {
        claims.push({ key: portKey(port.protocol, port.publishedPort), cfg: { serviceId: svc.serviceId, name: svc.name, port }, backends: svc.backends });
      }
    }
    claims.sort((a, b) => Number(holder(b.key) === b.cfg.serviceId) - Number(holder(a.key) === a.cfg.serviceId));
    for (const c of claims) {
      const owner = desired.get(c.key);
      if (owner === undefined) {
        desired.set(c.key, c);
        continue;
      }
      if (owner.cfg.serviceId === c.cfg.serviceId && owner.cfg.port.targetPort === c.cfg.port.targetPort) continue;
      const p = c.cfg.port;
      conflicts.push({
        serviceId: c.cfg.serviceId,
        name: c.cfg.name,
        protocol: p.protocol,
        publishedPort: p.publishedPort,
        mode: p.protocol === 'udp' ? 'tcp' : p.mode,
        state: 'conflict',
        error: `port ${p.publishedPort}/${p.protocol} is already published by service ${owner.cfg.name}`,
      });
    }
    this.conflicts = conflicts;

    const closing: Promise<void>[] = [];
    for (const [key, l] of this.listeners) {
      const want = desired.get(key);
      if (want === undefined || listenerKind(want.cfg.port) !== l.kind) {
        this.listeners.delete(key);
        // a removed port stops accepting; a port changing kind must free the socket now
        closing.push(l.close(want !== undefined));
      }
    }
    await Promise.all(closing);

    const starting: Promise<void>[] = [];
    for (const [key, want] of desired) {
      let l = this.listeners.get(key);
      if (l !== undefined) {
        l.update(want.cfg, want.backends);
        continue;
      }
      l = this.create(want.cfg);
      l.update(want.cfg, want.backends);
      this.listeners.set(key, l);
      starting.push(l.start());
    }
    await Promise.all(starting);
  }

  private create(cfg: ListenerConfig): Listener {
    switch (listenerKind(cfg.port)) {
      case 'udp':
        return new UdpListener(cfg, this.opts);
      case 'http':
        return new HttpListener(cfg, this.opts);
      default:
        return new TcpListener(cfg, this.opts);
    }
  }

  /** one row per (service, published port) in the last table, including conflicts */
  status(): PortStatus[] {
    return [...[...this.listeners.values()].map((l) => l.status()), ...this.conflicts];
  }

  /** counters per listening port */
  stats(): PortStatsSnapshot[] {
    return [...this.listeners.values()].map((l) => l.snapshot());
  }

  /** stop every listener and cut every open connection and flow */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const all = [...this.listeners.values()];
    this.listeners.clear();
    this.conflicts = [];
    await Promise.all(all.map((l) => l.close(true)));
  }
}
