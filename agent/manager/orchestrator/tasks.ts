// Owns how tasks are made from a service and read back: new task objects,
// slot grouping, and which tasks are still wanted.
import { newId, nowIso } from '../../common/ids.js';
import { isTerminal } from '../../common/taskstate.js';
import type { Node, Service, Task } from '../../common/types.js';

export type Mode = 'replicated' | 'global';

export function serviceMode(svc: Service): Mode {
  return svc.Spec.Mode.Global ? 'global' : 'replicated';
}

export function replicas(svc: Service): number {
  return svc.Spec.Mode.Replicated?.Replicas ?? 1;
}

export function newTask(svc: Service, at: { slot?: number; nodeId?: string }): Task {
  const now = nowIso();
  return {
    ID: newId(),
    Version: { Index: 0 },
    CreatedAt: now,
    UpdatedAt: now,
    Labels: {},
    Spec: structuredClone(svc.Spec.TaskTemplate),
    ServiceID: svc.ID,
    Slot: at.slot,
    NodeID: at.nodeId,
    Status: { Timestamp: now, State: 'new', Message: 'created' },
    DesiredState: 'running',
    SpecVersion: svc.SpecVersion ?? 1,
    ServiceAnnotations: { Name: svc.Spec.Name, Labels: svc.Spec.Labels ?? {} },
  };
}

/** tasks the orchestrator still wants to run (desired state running) */
export function isDesired(t: Task): boolean {
  return t.DesiredState === 'running';
}

/** a desired task that has died, or whose node can no longer run it */
export function isDead(t: Task, node: Node | undefined): boolean {
  if (isTerminal(t.Status.State)) return true;
  if (!t.NodeID) return false;
  return !node || node.Status.State === 'down' || node.Spec.Availability === 'drain';
}

/** groups tasks by slot (replicated) or node (global) */
export function groupBy(tasks: Task[], key: (t: Task) => string | number | undefined): Map<string | number, Task[]> {
  const m = new Map<string | number, Task[]>();
  for (const t of tasks) {
    const k = key(t);
    if (k === undefined) continue;
    let list = m.get(k);
    if (!list) m.set(k, (list = []));
    list.push(t);
  }
  return m;
}

export function shutdown(t: Task): Task {
  return { ...t, DesiredState: 'shutdown' };
}

export function byCreated(a: Task, b: Task): number {
  return a.CreatedAt < b.CreatedAt ? -1 : a.CreatedAt > b.CreatedAt ? 1 : 0;
}
