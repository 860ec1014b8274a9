// Owns the orchestration loop: watches the store, marks services dirty when
// they, their tasks or the nodes change, and reconciles dirty services in
// batches (one transaction per batch): rolling update, then replicated or
// global slots, then the reaper. Timers wake it for delayed restarts/updates.
import { logger } from '../../common/log.js';
import type { Service } from '../../common/types.js';
import type { Change, Store, WriteTx } from '../store/types.js';
import { Pass, type Memory } from './context.js';
import { reconcileGlobal } from './global.js';
import { reap } from './reaper.js';
import { reconcileReplicated } from './replicated.js';
import { RestartTracker } from './restart.js';
import { serviceMode } from './tasks.js';
import { reconcileUpdate } from './update.js';

const log = logger('orchestrator');
const BATCH = 200;

export class Orchestrator {
  private dirty = new Set<string>();
  private unwatch?: () => void;
  private scheduled = false;
  private running: Promise<void> | null = null;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private mem: Memory = { restarts: new RestartTracker(), decisions: new Map(), updates: new Map() };
  private stopped = false;

  constructor(private store: Store) {}

  start(): void {
    this.unwatch = this.store.watch((cs) => this.onChanges(cs));
    this.markAll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    clearTimeout(this.timer);
    await this.running;
  }

  /** runs until nothing is dirty (tests and benchmarks) */
  async settle(): Promise<void> {
    while (this.dirty.size || this.running) await (this.running ?? this.pass());
  }

  private onChanges(changes: Change[]): void {
    for (const c of changes) {
      if (c.kind === 'services') this.mark(c.object.ID);
      else if (c.kind === 'tasks') this.mark((c.object as { ServiceID: string }).ServiceID);
      else if (c.kind === 'nodes' || c.kind === 'cluster') { this.markAll(); return; }
    }
  }

  private markAll(): void {
    for (const s of this.store.list('services')) this.mark(s.ID);
    for (const t of this.store.list('tasks')) if (!this.store.get('services', t.ServiceID)) this.mark(t.ServiceID);
  }

  private mark(serviceId: string): void {
    this.dirty.add(serviceId);
    if (!this.scheduled && !this.stopped) {
      this.scheduled = true;
      setImmediate(() => { this.scheduled = false; void this.kick(); });
    }
  }

  private async kick(): Promise<void> {
    if (this.running || this.stopped) return;
    while (this.dirty.size && !this.stopped) {
      this.running = this.pass();
      await this.running;
      this.running = null;
    }
  }

  private async pass(): Promise<void> {
    const ids = [...this.dirty].slice(0, BATCH);
    for (const id of ids) this.dirty.delete(id);
    try {
      const wakeAt = await this.store.update((tx) => {
        const p = new Pass(tx, Date.now(), this.mem);
        const retention = tx.list('cluster')[0]?.Spec.Orchestration?.TaskHistoryRetentionLimit ?? 5;
        for (const id of ids) this.reconcile(p, tx, id, retention);
        return p.wakeAt;
      });
      if (wakeAt < Infinity) this.wakeAt(wakeAt, ids);
    } catch (err) {
      log.error({ err }, 'orchestration pass failed; retrying');
      for (const id of ids) this.dirty.add(id);
      this.wakeAt(Date.now() + 500, ids);
    }
  }

  private reconcile(p: Pass, tx: WriteTx, serviceId: string, retention: number): void {
    let svc: Service | undefined = tx.get('services', serviceId);
    if (svc && reconcileUpdate(p, svc, tx.byIndex('tasks', 'service', serviceId))) svc = tx.get('services', serviceId)!;
    if (svc) {
      const tasks = tx.byIndex('tasks', 'service', serviceId);
      if (serviceMode(svc) === 'global') reconcileGlobal(p, svc, tasks);
      else reconcileReplicated(p, svc, tasks);
    } else {
      this.mem.updates.delete(serviceId);
      this.mem.restarts.forget(`${serviceId}/`);
    }
    reap(p, svc, tx.byIndex('tasks', 'service', serviceId), retention);
  }

  private pendingWake = new Set<string>();

  private wakeAt(at: number, ids: string[]): void {
    for (const id of ids) this.pendingWake.add(id);
    if (at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timerAt = Infinity;
      const wake = [...this.pendingWake];
      this.pendingWake.clear();
      for (const id of wake) this.mark(id);
    }, Math.max(0, at - Date.now()));
    this.timer.unref?.();
  }
}
