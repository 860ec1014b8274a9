// Owns what one reconcile pass of one service sees and may do: the
// transaction, the clock, the leader-local memory (restart decisions, update
// progress) and the wake-up it asks for.
import type { Node, Service, Task } from '../../common/types.js';
import type { WriteTx } from '../store/types.js';
import { newTask, shutdown } from './tasks.js';
import type { RestartTracker } from './restart.js';

export interface Decision { restart: boolean; dueAt: number }

export interface UpdateMemory { specVersion: number; failures: Set<string>; lastBatchAt: number }

/** leader-local state kept between passes; rebuilt from the store after a failover */
export interface Memory {
  restarts: RestartTracker;
  decisions: Map<string, Decision>; // by dead task id
  updates: Map<string, UpdateMemory>; // by service id
}

export class Pass {
  wakeAt = Infinity;
  private nodes = new Map<string, Node>();

  constructor(readonly tx: WriteTx, readonly now: number, readonly mem: Memory) {
    for (const n of tx.list('nodes')) this.nodes.set(n.ID, n);
  }

  node(id: string | undefined): Node | undefined {
    return id ? this.nodes.get(id) : undefined;
  }

  allNodes(): Node[] {
    return [...this.nodes.values()];
  }

  wake(at: number): void {
    if (at < this.wakeAt) this.wakeAt = at;
  }

  create(svc: Service, at: { slot?: number; nodeId?: string }): Task {
    return this.tx.create('tasks', newTask(svc, at));
  }

  stop(t: Task): void {
    if (t.DesiredState !== 'shutdown') this.tx.update('tasks', shutdown(t));
  }

  /**
   * A desired task died: decide once (restart policy) and act when due.
   * Returns true when the slot is free for a new task now.
   */
  replaceDead(svc: Service, dead: Task, key: string, nodeLost: boolean): boolean {
    let d = this.mem.decisions.get(dead.ID);
    if (!d) {
      const { restart, delayMs } = this.mem.restarts.decide(svc, dead, key, this.now, nodeLost);
      d = { restart, dueAt: this.now + delayMs };
      this.mem.decisions.set(dead.ID, d);
    }
    if (!d.restart) return false; // the dead task keeps its slot: no restart by policy
    if (this.now < d.dueAt) {
      this.wake(d.dueAt);
      return false;
    }
    this.stop(dead);
    this.mem.decisions.delete(dead.ID);
    return true;
  }
}
