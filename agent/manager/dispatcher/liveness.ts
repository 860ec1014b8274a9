// Owns node liveness: every remote node must be heard from (session,
// heartbeat or status report) within HEARTBEAT_GRACE periods or it is marked
// down, and its tasks get rescheduled by the orchestrators. A node heard from
// again becomes ready. Nodes get a full grace period after a manager starts.
import type { Store } from '../store/types.js';
import type { Dispatcher } from './dispatcher.js';

export const HEARTBEAT_GRACE = 3;

export class Liveness {
  private lastSeen = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(private store: Store, private dispatcher: Dispatcher, private periodMs: () => number, private localNodeId: () => string | undefined) {}

  start(): void {
    const tick = () => {
      void this.check().finally(() => {
        this.timer = setTimeout(tick, Math.max(100, this.periodMs() / 2));
        this.timer.unref?.();
      });
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** heartbeats received since start */
  beats = 0;

  beat(nodeId: string): void {
    this.beats++;
    this.lastSeen.set(nodeId, Date.now());
    const n = this.store.get('nodes', nodeId);
    if (n && n.Status.State !== 'ready') void this.dispatcher.setNodeState(nodeId, 'ready').catch(() => undefined);
  }

  forget(nodeId: string): void {
    this.lastSeen.delete(nodeId);
  }

  private async check(): Promise<void> {
    const now = Date.now();
    const grace = HEARTBEAT_GRACE * this.periodMs();
    const local = this.localNodeId();
    for (const n of this.store.list('nodes')) {
      if (n.ID === local || n.Status.State === 'down') continue;
      const seen = this.lastSeen.get(n.ID) ?? this.startedAt;
      if (now - seen > grace) await this.dispatcher.setNodeState(n.ID, 'down', 'heartbeat failure').catch(() => undefined);
    }
  }
}
