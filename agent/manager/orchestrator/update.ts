// Owns rolling updates and rollbacks: tasks made from an older spec are
// replaced in batches (parallelism, delay, order stop-first|start-first);
// new tasks that fail trigger the failure action (pause, continue, rollback);
// UpdateStatus tells the CLI where the update stands.
import { isDeepStrictEqual } from 'node:util';
import { nowIso } from '../../common/ids.js';
import { isTerminal, nsToMs } from '../../common/taskstate.js';
import type { Service, Task, UpdateConfig, UpdateState } from '../../common/types.js';
import type { Pass } from './context.js';
import { isDesired, serviceMode } from './tasks.js';

export const UPDATE_DEFAULTS: Required<UpdateConfig> = {
  Parallelism: 1, Delay: 0, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first',
};

function config(c: UpdateConfig | undefined): Required<UpdateConfig> {
  return { ...UPDATE_DEFAULTS, ...Object.fromEntries(Object.entries(c ?? {}).filter(([, v]) => v !== undefined)) };
}

function setStatus(p: Pass, svc: Service, State: UpdateState, Message: string): void {
  const now = nowIso();
  const done = State === 'completed' || State === 'rollback_completed';
  p.tx.update('services', {
    ...svc,
    UpdateStatus: { State, StartedAt: done ? svc.UpdateStatus?.StartedAt ?? now : svc.UpdateStatus?.StartedAt ?? now, ...(done ? { CompletedAt: now } : {}), Message },
  });
}

/** returns true when the service object was rewritten (the caller re-reads it) */
export function reconcileUpdate(p: Pass, svc: Service, tasks: Task[]): boolean {
  const version = svc.SpecVersion ?? 1;
  const template = svc.Spec.TaskTemplate;
  const desired = tasks.filter(isDesired);
  const outdated: Task[] = [];
  for (const t of desired) {
    if ((t.SpecVersion ?? 1) === version) continue;
    // a spec change that leaves the task's own spec alone (scale, labels): no restart
    if (isDeepStrictEqual(t.Spec, template)) p.tx.update('tasks', { ...t, SpecVersion: version });
    else outdated.push(t);
  }
  const state = svc.UpdateStatus?.State;
  const rollingBack = state === 'rollback_started' || state === 'rollback_paused';
  if (state === 'paused' || state === 'rollback_paused') return false;
  const cfg = config(rollingBack ? svc.Spec.RollbackConfig : svc.Spec.UpdateConfig);

  let mem = p.mem.updates.get(svc.ID);
  if (!mem || mem.specVersion !== version) {
    mem = { specVersion: version, failures: new Set(), lastBatchAt: 0 };
    p.mem.updates.set(svc.ID, mem);
  }
  const current = desired.filter((t) => (t.SpecVersion ?? 1) === version);
  const inFlight = current.filter((t) => t.Status.State !== 'running' && !isTerminal(t.Status.State));

  // failures among the new tasks while the update runs (the last batch included, during its monitor period)
  const updating = state === 'updating' || state === 'rollback_started';
  const since = Date.parse(svc.UpdateStatus?.StartedAt ?? '') || 0;
  if (updating) {
    for (const t of tasks) {
      if ((t.SpecVersion ?? 1) === version && Date.parse(t.CreatedAt) >= since && (t.Status.State === 'failed' || t.Status.State === 'rejected')) mem.failures.add(t.ID);
    }
  }
  const total = outdated.length + current.length;
  if (updating && mem.failures.size > cfg.MaxFailureRatio * total && cfg.FailureAction !== 'continue') {
    const culprit = [...mem.failures][mem.failures.size - 1];
    if (cfg.FailureAction === 'rollback' && !rollingBack && svc.PreviousSpec) {
      p.tx.update('services', {
        ...svc, Spec: svc.PreviousSpec, PreviousSpec: svc.Spec, SpecVersion: version + 1,
        UpdateStatus: { State: 'rollback_started', StartedAt: nowIso(), Message: `update rolled back due to failure or early termination of task ${culprit}` },
      });
    } else {
      setStatus(p, svc, rollingBack ? 'rollback_paused' : 'paused', `update paused due to failure or early termination of task ${culprit}`);
    }
    return true;
  }

  if (outdated.length === 0) {
    if (inFlight.length || !updating) return false;
    // as Swarm: done once the newest task has been watched for the monitor period
    const lastStart = current.reduce((m, t) => (Date.parse(t.CreatedAt) >= since ? Math.max(m, Date.parse(t.Status.Timestamp) || 0) : m), 0);
    if (p.now < lastStart + nsToMs(cfg.Monitor)) {
      p.wake(lastStart + nsToMs(cfg.Monitor));
      return false;
    }
    if (state === 'updating') setStatus(p, svc, 'completed', 'update completed');
    else setStatus(p, svc, 'rollback_completed', 'rollback completed');
    return true;
  }

  if (state !== 'updating' && state !== 'rollback_started') {
    setStatus(p, svc, 'updating', 'update in progress');
    return true;
  }

  const budget = cfg.Parallelism === 0 ? outdated.length : cfg.Parallelism - inFlight.length;
  if (budget <= 0) return false;
  const delayMs = nsToMs(cfg.Delay);
  if (mem.lastBatchAt && p.now < mem.lastBatchAt + delayMs) {
    p.wake(mem.lastBatchAt + delayMs);
    return false;
  }
  const global = serviceMode(svc) === 'global';
  outdated.sort((a, b) => (a.Slot ?? 0) - (b.Slot ?? 0));
  // a slot (or node) whose replacement already exists is done: start-first keeps the old task until it runs
  const replaced = new Set(current.map((t) => (global ? t.NodeID : t.Slot)));
  const todo = outdated.filter((t) => !replaced.has(global ? t.NodeID : t.Slot));
  for (const old of todo.slice(0, budget)) {
    if (cfg.Order === 'stop-first') p.stop(old);
    p.create(svc, global ? { nodeId: old.NodeID } : { slot: old.Slot });
  }
  mem.lastBatchAt = p.now;
  return false;
}
