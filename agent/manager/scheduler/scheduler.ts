// Owns the scheduling stage: pending tasks (Status.State pending, DesiredState
// running) get a node. It keeps a private mirror of nodes and task occupancy,
// fed by store.watch, and schedules in batches: changes are coalesced, one
// pass runs on setImmediate, never two at once. A pass groups tasks of the same
// service and spec, places each group (placer.ts), then writes the results in
// chunked transactions, re-reading every task and skipping ones that changed.
// Tasks that fit nowhere stay pending with Swarm's reason in Status.Err,
// written only when the reason changes.
import { nowIso } from '../../common/ids.js';
import { logger } from '../../common/log.js';
import type { Cluster, Node, Service, Task } from '../../common/types.js';
import type { Change, Store } from '../store/types.js';
import { taskRequest, type TaskRequest } from './filters.js';
import { NodeInfo, occupancy } from './nodeinfo.js';
import { placeGroup, placeOnNode, StaticCache } from './placer.js';
import { isStrategy, type StrategyName } from './strategy.js';

const log = logger('scheduler');

export const STRATEGY_LABEL = 'shoal.strategy';
export const ASSIGNED_MESSAGE = 'scheduler assigned task to node';
export const PENDING_MESSAGE = 'pending task scheduling';

export interface SchedulerOptions {
  /** randomness for the `random` strategy (default Math.random) */
  random?: () => number;
  /** task writes per transaction (default 500) */
  writeBatch?: number;
  /** called after every pass that had work (metrics: scheduler latency) */
  onPass?: (stats: PassStats) => void;
}

export interface PassStats {
  pending: number;
  assigned: number;
  unschedulable: number;
  skipped: number;
  placeMs: number;
  writeMs: number;
}

interface Known { version: number; nodeId?: string }
type Outcome = { task: Task; nodeId: string; reason?: undefined } | { task: Task; nodeId?: undefined; reason: string };

const isWorkItem = (t: Task) => t.Status.State === 'pending' && t.DesiredState === 'running';

export class Scheduler {
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly known = new Map<string, Known>();
  private readonly pending = new Map<string, Task>();
  private readonly services = new Map<string, Service>();
  private clusterStrategy: StrategyName | undefined;
  private unwatch: (() => void) | undefined;
  private dirty = false;
  private kicked = false;
  private pass: Promise<void> | undefined;
  /** figures of the last pass, for metrics and logs */
  lastPass: PassStats | undefined;

  constructor(private readonly store: Store, private readonly opts: SchedulerOptions = {}) {}

  /** snapshot the store, watch it, and schedule whenever something relevant changes */
  start(): void {
    if (this.unwatch) return;
    this.unwatch = this.store.watch((changes) => this.onChanges(changes));
    this.reload();
    this.dirty = true;
    this.kick();
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /**
   * One scheduling pass (after the running one, if any). When the scheduler
   * is not started, the pass works on a fresh snapshot of the store.
   */
  tick(): Promise<void> {
    if (this.pass) {
      this.dirty = true;
      return this.pass.then(() => this.tick());
    }
    const p = this.runPass().finally(() => {
      this.pass = undefined;
      if (this.dirty) this.kick();
    });
    this.pass = p;
    return p;
  }

  // ---- mirror ----

  private reload(): void {
    this.nodes.clear();
    this.known.clear();
    this.pending.clear();
    this.services.clear();
    this.clusterStrategy = undefined;
    this.loadSnapshot();
  }

  private loadSnapshot(): void {
    const cluster = this.store.list('cluster')[0];
    if (cluster) this.applyCluster(cluster);
    for (const s of this.store.list('services')) this.services.set(s.ID, s);
    for (const n of this.store.list('nodes')) this.applyNode(n);
    for (const t of this.store.list('tasks')) this.applyTask(t, false);
  }

  private onChanges(changes: Change[]): void {
    for (const c of changes) {
      switch (c.kind) {
        case 'tasks':
          if (c.action === 'remove') this.forgetTask(c.object.ID);
          else this.applyTask(c.object as Task, false);
          break;
        case 'nodes':
          if (c.action === 'remove') this.nodes.delete(c.object.ID);
          else this.applyNode(c.object as Node);
          if (this.pending.size > 0) this.dirty = true;
          break;
        case 'services':
          if (c.action === 'remove') this.services.delete(c.object.ID);
          else this.services.set(c.object.ID, c.object as Service);
          if (this.pending.size > 0) this.dirty = true;
          break;
        case 'cluster':
          if (c.action !== 'remove' && this.applyCluster(c.object as Cluster) && this.pending.size > 0) this.dirty = true;
          break;
        default:
          break;
      }
    }
    if (this.dirty) this.kick();
  }

  private applyCluster(c: Cluster): boolean {
    const raw = c.Spec.Labels?.[STRATEGY_LABEL];
    const s = isStrategy(raw) ? raw : undefined;
    const changed = s !== this.clusterStrategy;
    this.clusterStrategy = s;
    return changed;
  }

  private applyNode(n: Node): void {
    const ni = this.nodes.get(n.ID);
    if (!ni) this.nodes.set(n.ID, new NodeInfo(n));
    else if (n.Version.Index >= ni.node.Version.Index) ni.node = n;
  }

  /** brings the mirror in line with `t`; `force` ignores the version guard */
  private applyTask(t: Task, force: boolean): void {
    const prev = this.known.get(t.ID);
    if (prev && !force && prev.version > t.Version.Index) return;
    let freed = false;
    if (prev?.nodeId) freed = this.nodes.get(prev.nodeId)?.removeTask(t.ID) ?? false;
    const d = occupancy(t, this.services.get(t.ServiceID));
    const ni = d && t.NodeID ? this.nodes.get(t.NodeID) : undefined;
    if (d && ni) {
      ni.addTask(t.ID, d);
      if (prev?.nodeId === ni.id) freed = false;
    }
    if (isWorkItem(t)) {
      if (!this.pending.has(t.ID)) this.dirty = true;
      this.pending.set(t.ID, t);
    } else {
      this.pending.delete(t.ID);
    }
    if (d || isWorkItem(t)) this.known.set(t.ID, { version: t.Version.Index, nodeId: d && ni ? ni.id : undefined });
    else this.known.delete(t.ID);
    if (freed && this.pending.size > 0) this.dirty = true;
  }

  private forgetTask(id: string): void {
    const prev = this.known.get(id);
    if (prev?.nodeId && this.nodes.get(prev.nodeId)?.removeTask(id) && this.pending.size > 0) this.dirty = true;
    this.known.delete(id);
    this.pending.delete(id);
  }

  private kick(): void {
    if (this.kicked || !this.unwatch) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      if (this.pass || !this.dirty || !this.unwatch) return;
      this.tick().catch((err) => log.error({ err }, 'scheduling pass failed'));
    });
  }

  strategyFor(service: Service | undefined): StrategyName {
    const raw = service?.Spec.Labels?.[STRATEGY_LABEL];
    return isStrategy(raw) ? raw : this.clusterStrategy ?? 'spread';
  }

  // ---- one pass ----

  private async runPass(): Promise<void> {
    if (!this.unwatch) this.reload();
    this.dirty = false;
    if (this.pending.size === 0) return;
    const t0 = performance.now();
    const outcomes = this.place();
    const t1 = performance.now();
    const { assigned, skipped } = await this.write(outcomes);
    const stats: PassStats = {
      pending: outcomes.length, assigned, unschedulable: outcomes.length - assigned - skipped, skipped,
      placeMs: t1 - t0, writeMs: performance.now() - t1,
    };
    this.lastPass = stats;
    if (skipped > 0) this.dirty = true;
    try { this.opts.onPass?.(stats); } catch (err) { log.warn({ err }, 'onPass hook failed'); }
    log.debug(stats, 'scheduling pass');
  }

  /** decides a node (or a reason) for every pending task and records placements in the mirror */
  private place(): Outcome[] {
    const groups = new Map<string, { req: TaskRequest; service: Service | undefined; tasks: Task[] }>();
    const outcomes: Outcome[] = [];
    for (const t of this.pending.values()) {
      const service = this.services.get(t.ServiceID);
      if (t.NodeID) {
        const why = placeOnNode(this.nodes.get(t.NodeID), taskRequest(t, service), t.ID);
        if (why === undefined) this.recordPlacement(t, t.NodeID, outcomes);
        else outcomes.push({ task: t, reason: why });
        continue;
      }
      const key = groupKey(t);
      const g = groups.get(key);
      if (g) g.tasks.push(t);
      else groups.set(key, { req: taskRequest(t, service), service, tasks: [t] });
    }
    const nodeList = [...this.nodes.values()];
    const cache = new StaticCache(nodeList);
    for (const g of groups.values()) {
      const ids = g.tasks.map((t) => t.ID);
      const r = placeGroup(nodeList, g.req, ids, { strategy: this.strategyFor(g.service), random: this.opts.random, cache });
      for (const t of g.tasks) {
        const ni = r.placed.get(t.ID);
        if (ni) this.recordPlacement(t, ni.id, outcomes);
        else outcomes.push({ task: t, reason: r.reason ?? 'no suitable node' });
      }
    }
    return outcomes;
  }

  private recordPlacement(t: Task, nodeId: string, outcomes: Outcome[]): void {
    const k = this.known.get(t.ID);
    if (k) k.nodeId = nodeId;
    else this.known.set(t.ID, { version: t.Version.Index, nodeId });
    outcomes.push({ task: t, nodeId });
  }

  /** writes outcomes in chunks; re-syncs the mirror from what was written or found */
  private async write(outcomes: Outcome[]): Promise<{ assigned: number; skipped: number }> {
    const size = Math.max(1, this.opts.writeBatch ?? 500);
    let assigned = 0;
    let skipped = 0;
    for (let i = 0; i < outcomes.length; i += size) {
      const chunk = outcomes.slice(i, i + size);
      if (!chunk.some((o) => o.nodeId !== undefined || o.task.Status.Err !== o.reason || o.task.Status.Message !== PENDING_MESSAGE)) continue;
      let results: { o: Outcome; now: Task | undefined; wrote: boolean }[];
      try {
        const ts = nowIso();
        results = await this.store.update((tx) => chunk.map((o) => {
          const fresh = tx.get('tasks', o.task.ID);
          if (!fresh || fresh.Version.Index !== o.task.Version.Index || !isWorkItem(fresh) || fresh.NodeID !== o.task.NodeID) {
            return { o, now: fresh, wrote: false };
          }
          if (o.nodeId !== undefined) {
            const next = { ...fresh, NodeID: o.nodeId, Status: { State: 'assigned' as const, Message: ASSIGNED_MESSAGE, Timestamp: ts } };
            return { o, now: tx.update('tasks', next, fresh.Version.Index), wrote: true };
          }
          if (fresh.Status.Err === o.reason && fresh.Status.Message === PENDING_MESSAGE) return { o, now: fresh, wrote: false };
          const next = { ...fresh, Status: { ...fresh.Status, Err: o.reason, Message: PENDING_MESSAGE, Timestamp: ts } };
          return { o, now: tx.update('tasks', next, fresh.Version.Index), wrote: true };
        }));
      } catch (err) {
        log.warn({ err }, 'scheduler write failed; re-reading tasks');
        for (const o of chunk) this.resync(o.task.ID, this.store.get('tasks', o.task.ID));
        skipped += chunk.length;
        continue;
      }
      for (const r of results) {
        const stale = !r.now || r.now.Version.Index !== r.o.task.Version.Index;
        if (r.wrote && r.o.nodeId !== undefined) assigned++;
        else if (!r.wrote && stale) skipped++;
        // placements were recorded optimistically: replace them with what the store holds now
        if (r.o.nodeId !== undefined || r.wrote) this.resync(r.o.task.ID, this.store.get('tasks', r.o.task.ID));
      }
    }
    return { assigned, skipped };
  }

  private resync(id: string, now: Task | undefined): void {
    if (now) this.applyTask(now, true);
    else this.forgetTask(id);
  }
}

/** tasks with the same key ask the same of a node and are placed together */
function groupKey(t: Task): string {
  const p = t.Spec.Placement;
  const r = t.Spec.Resources?.Reservations;
  let key = t.ServiceID;
  if (r) key += `\0${r.NanoCPUs ?? 0}\0${r.MemoryBytes ?? 0}`;
  if (p) key += `\0${JSON.stringify(p)}`;
  return key;
}
