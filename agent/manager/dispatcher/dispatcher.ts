// Owns the manager's side of every worker: node registration, the set of
// tasks assigned to each node (pushed on change), task status reports
// (applied forward-only, batched into few transactions) and node liveness.
import { nowIso } from '../../common/ids.js';
import { logger } from '../../common/log.js';
import { isForward } from '../../common/taskstate.js';
import type { Node, NodeDescription, Task, TaskStatus } from '../../common/types.js';
import type { Store } from '../store/types.js';

const log = logger('dispatcher');

export interface StatusUpdate { taskId: string; status: TaskStatus }

/** tasks a node must know about: everything placed on it, until the reaper deletes it */
export function isAssigned(t: Task): boolean {
  return t.Status.State !== 'new' && t.Status.State !== 'pending';
}

export class Dispatcher {
  private subscribers = new Map<string, Set<(tasks: Task[]) => void>>();
  private dirtyNodes = new Set<string>();
  private pushQueued = false;
  private pending = new Map<string, { nodeId: string; status: TaskStatus }>();
  private flushing: Promise<void> | null = null;
  private unwatch: () => void;

  constructor(private store: Store) {
    this.unwatch = store.watch((changes) => {
      for (const c of changes) {
        if (c.kind !== 'tasks') continue;
        const nodeId = (c.object as Task).NodeID;
        if (nodeId && this.subscribers.has(nodeId)) this.dirtyNodes.add(nodeId);
      }
      if (this.dirtyNodes.size && !this.pushQueued) {
        this.pushQueued = true;
        setImmediate(() => this.push());
      }
    });
  }

  close(): void {
    this.unwatch();
    this.subscribers.clear();
  }

  /** a node (re)connects: record what it is and mark it ready */
  async register(nodeId: string, desc: NodeDescription, addr: string): Promise<void> {
    await this.store.update((tx) => {
      const n = tx.get('nodes', nodeId);
      if (!n) throw new Error(`node ${nodeId} not found`);
      tx.update('nodes', { ...n, Description: { ...desc, TLSInfo: n.Description.TLSInfo ?? desc.TLSInfo }, Status: { State: 'ready', Addr: addr } });
    });
  }

  async setNodeState(nodeId: string, state: Node['Status']['State'], message?: string): Promise<void> {
    await this.store.update((tx) => {
      const n = tx.get('nodes', nodeId);
      if (n && n.Status.State !== state) tx.update('nodes', { ...n, Status: { ...n.Status, State: state, ...(message ? { Message: message } : {}) } });
    });
  }

  assignments(nodeId: string): Task[] {
    return this.store.byIndex('tasks', 'node', nodeId).filter(isAssigned);
  }

  /** fn gets the node's full assignment set now and after every change */
  subscribe(nodeId: string, fn: (tasks: Task[]) => void): () => void {
    let set = this.subscribers.get(nodeId);
    if (!set) this.subscribers.set(nodeId, (set = new Set()));
    set.add(fn);
    fn(this.assignments(nodeId));
    return () => {
      set!.delete(fn);
      if (!set!.size) this.subscribers.delete(nodeId);
    };
  }

  private push(): void {
    this.pushQueued = false;
    const nodes = [...this.dirtyNodes];
    this.dirtyNodes.clear();
    for (const nodeId of nodes) {
      const tasks = this.assignments(nodeId);
      for (const fn of this.subscribers.get(nodeId) ?? []) {
        try { fn(tasks); } catch (err) { log.error({ err, nodeId }, 'assignment subscriber failed'); }
      }
    }
  }

  /** status reports from a node's worker; only tasks on that node, only forward */
  updateStatus(nodeId: string, updates: StatusUpdate[]): Promise<void> {
    for (const u of updates) this.pending.set(u.taskId, { nodeId, status: u.status });
    this.flushing ??= this.flush();
    return this.flushing;
  }

  private async flush(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    while (this.pending.size) {
      const batch = [...this.pending];
      this.pending.clear();
      try {
        await this.store.update((tx) => {
          for (const [taskId, { nodeId, status }] of batch) {
            const t = tx.get('tasks', taskId);
            if (!t || t.NodeID !== nodeId) continue;
            if (!isForward(t.Status.State, status.State)) continue;
            tx.update('tasks', { ...t, Status: { ...status, Timestamp: status.Timestamp || nowIso() } });
          }
        });
      } catch (err) {
        log.error({ err }, 'applying task status failed');
      }
    }
    this.flushing = null;
  }
}
