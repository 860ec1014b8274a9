// Owns resource allocation between orchestration and scheduling: a task is
// created `new`; once its resources are allocated it becomes `pending` and the
// scheduler may place it. (Overlay addresses and VIPs are allocated here as
// netd lands; today tasks need nothing more.)
import { nowIso } from '../../common/ids.js';
import { logger } from '../../common/log.js';
import type { Store } from '../store/types.js';

const log = logger('allocator');

export class Allocator {
  private unwatch?: () => void;
  private queued = false;
  private busy = false;

  constructor(private store: Store) {}

  start(): void {
    this.unwatch = this.store.watch((cs) => {
      if (cs.some((c) => c.kind === 'tasks' && c.action !== 'remove' && (c.object as { Status: { State: string } }).Status.State === 'new')) this.kick();
    });
    this.kick();
  }

  stop(): void {
    this.unwatch?.();
  }

  private kick(): void {
    if (this.queued) return;
    this.queued = true;
    setImmediate(() => { this.queued = false; void this.run(); });
  }

  private async run(): Promise<void> {
    if (this.busy) { this.kick(); return; }
    this.busy = true;
    try {
      await this.store.update((tx) => {
        for (const t of tx.list('tasks', (t) => t.Status.State === 'new')) {
          if (t.DesiredState !== 'running') continue;
          tx.update('tasks', { ...t, Status: { ...t.Status, State: 'pending', Message: 'pending task scheduling', Timestamp: nowIso() } });
        }
      });
    } catch (err) {
      log.error({ err }, 'allocation failed');
    } finally {
      this.busy = false;
    }
  }
}
