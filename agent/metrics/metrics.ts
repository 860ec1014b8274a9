// Owns the agent's Prometheus exposition (prom-client, names prefixed
// shoal_): process and runtime metrics, and on managers the cluster's picture
// (nodes, services, tasks, store, sessions) read from the store at scrape time
// so a gauge can never drift from the state it reports.
import { createServer, type Server } from 'node:http';
import client from 'prom-client';
import type { Store } from '../manager/store/types.js';
import { isLive } from '../common/taskstate.js';
import { replicas, serviceMode } from '../manager/orchestrator/tasks.js';
import type { DnsStats } from '../../netd/dns/index.js';
import type { PortStatsSnapshot } from '../../lb/index.js';
import { registerDnsMetrics } from './dns.js';
import { registerMeshMetrics } from './mesh.js';

/** what a node's data plane lends the metrics at scrape time */
export interface DataPlaneSource {
  dnsStats(): DnsStats;
  meshStats(): PortStatsSnapshot[];
}

/** what a manager lends the metrics at scrape time */
export interface ControlPlaneSource {
  store: Store;
  sessions(): number;
  heartbeats(): number;
}

export class Metrics {
  readonly registry = new client.Registry();
  private server?: Server;
  private storeChanges: client.Counter<'kind' | 'action'>;
  private watched?: Store;
  private unwatch?: () => void;
  private followTimer?: NodeJS.Timeout;

  constructor(private source: () => ControlPlaneSource | undefined, dataPlane: () => DataPlaneSource | undefined = () => undefined) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'shoal_' });
    registerDnsMetrics(this.registry, () => dataPlane()?.dnsStats());
    registerMeshMetrics(this.registry, () => dataPlane()?.meshStats() ?? []);
    // prom-client's *_total gauges break the naming rules promtool checks (the un-suffixed gauges stay)
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) this.registry.removeSingleMetric(`shoal_nodejs_${name}`);
    const r = [this.registry];
    const self = this;
    this.storeChanges = new client.Counter({ name: 'shoal_store_changes_total', help: 'Objects written to the store, by kind and action', labelNames: ['kind', 'action'], registers: r });
    new client.Gauge({
      name: 'shoal_manager', help: '1 when this agent runs the control plane', registers: r,
      collect() { this.set(self.source() ? 1 : 0); },
    });
    new client.Gauge({
      name: 'shoal_nodes', help: 'Nodes by state, availability and role', labelNames: ['state', 'availability', 'role'], registers: r,
      collect() {
        this.reset();
        for (const n of self.source()?.store.list('nodes') ?? []) this.inc({ state: n.Status.State, availability: n.Spec.Availability, role: n.Spec.Role });
      },
    });
    new client.Gauge({
      name: 'shoal_tasks', help: 'Tasks by observed state and desired state', labelNames: ['state', 'desired_state'], registers: r,
      collect() {
        this.reset();
        for (const t of self.source()?.store.list('tasks') ?? []) this.inc({ state: t.Status.State, desired_state: t.DesiredState });
      },
    });
    const running = new client.Gauge({ name: 'shoal_service_tasks_running', help: 'Running tasks of each service (desired running, observed running)', labelNames: ['service', 'mode'], registers: r });
    new client.Gauge({
      name: 'shoal_service_tasks_desired', help: 'Tasks each service asks for (replicas, or one per eligible node for global services)', labelNames: ['service', 'mode'], registers: r,
      collect() {
        this.reset();
        running.reset();
        const src = self.source();
        if (!src) return;
        const activeNodes = src.store.list('nodes', (n) => n.Status.State === 'ready' && n.Spec.Availability === 'active').length;
        for (const s of src.store.list('services')) {
          const mode = serviceMode(s);
          const tasks = src.store.byIndex('tasks', 'service', s.ID);
          const labels = { service: s.Spec.Name, mode };
          this.set(labels, mode === 'global' ? activeNodes : replicas(s));
          running.set(labels, tasks.filter((t) => isLive(t) && t.Status.State === 'running').length);
        }
      },
    });
    new client.Gauge({
      name: 'shoal_store_revision', help: 'Revision of the manager store', registers: r,
      collect() { this.set(self.source()?.store.revision ?? 0); },
    });
    new client.Gauge({
      name: 'shoal_dispatcher_sessions', help: 'Worker sessions open on this manager', registers: r,
      collect() { this.set(self.source()?.sessions() ?? 0); },
    });
    new client.Gauge({
      name: 'shoal_dispatcher_heartbeats', help: 'Heartbeats received from workers since this manager started', registers: r,
      collect() { this.set(self.source()?.heartbeats() ?? 0); },
    });
  }

  /** counts store writes; call again when the manager changes */
  private follow(): void {
    const src = this.source();
    if (src?.store === this.watched) return;
    this.unwatch?.();
    this.watched = src?.store;
    this.unwatch = src?.store.watch((changes) => {
      for (const c of changes) this.storeChanges.inc({ kind: c.kind, action: c.action });
    });
  }

  async exposition(): Promise<string> {
    this.follow();
    return this.registry.metrics();
  }

  listen(host: string, port: number): Promise<number> {
    this.follow();
    // a manager can appear at any time (swarm init, join): start counting its writes within a second
    this.followTimer = setInterval(() => this.follow(), 1000);
    this.followTimer.unref();
    this.server = createServer((req, res) => {
      if (req.url?.split('?')[0] !== '/metrics') { res.writeHead(404).end('not found\n'); return; }
      this.exposition().then((text) => {
        res.writeHead(200, { 'content-type': this.registry.contentType });
        res.end(text);
      }, (err) => { res.writeHead(500).end(String(err)); });
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve((this.server!.address() as { port: number }).port));
    });
  }

  async close(): Promise<void> {
    clearInterval(this.followTimer);
    this.unwatch?.();
    await new Promise((r) => (this.server ? this.server.close(() => r(undefined)) : r(undefined)));
  }
}
