// Owns the work only the leader does, as one unit per term of leadership:
// allocator, scheduler, orchestrator, the dispatcher (worker registration,
// assignments, status reports) and liveness (down detection). A term is built
// on the store it may write through — the plain store on an embedded
// manager, the fenced view on an etcd manager — and stopped synchronously
// when the term ends: after stop() nothing of it reacts to changes any more,
// and a pass still in flight can only fail its fenced write.
import type { Store } from '../store/types.js';
import { Allocator } from '../allocator/allocator.js';
import { Dispatcher } from '../dispatcher/dispatcher.js';
import { Liveness } from '../dispatcher/liveness.js';
import { Orchestrator } from '../orchestrator/orchestrator.js';
import { Scheduler } from '../scheduler/scheduler.js';

export class LeaderWork {
  readonly allocator: Allocator;
  readonly orchestrator: Orchestrator;
  readonly scheduler: Scheduler;
  readonly dispatcher: Dispatcher;
  /** a new term gives every node a full grace period: liveness counts from its construction */
  readonly liveness: Liveness;
  private stopped = false;
  private orchestratorStopped: Promise<void> | undefined;

  constructor(readonly store: Store, heartbeatPeriodMs: () => number, localNodeId: () => string | undefined) {
    this.allocator = new Allocator(store);
    this.orchestrator = new Orchestrator(store);
    this.scheduler = new Scheduler(store);
    this.dispatcher = new Dispatcher(store);
    this.liveness = new Liveness(store, this.dispatcher, heartbeatPeriodMs, localNodeId);
  }

  get running(): boolean { return !this.stopped; }

  start(): void {
    this.liveness.start();
    this.allocator.start();
    this.scheduler.start();
    this.orchestrator.start();
  }

  /** stops reacting at once; the promise settles when the orchestrator's pass in flight has ended */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.liveness.stop();
      this.allocator.stop();
      this.scheduler.stop();
      this.orchestratorStopped = this.orchestrator.stop().catch(() => undefined);
      this.dispatcher.close();
    }
    return this.orchestratorStopped ?? Promise.resolve();
  }
}
