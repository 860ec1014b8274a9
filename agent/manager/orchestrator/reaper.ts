// Owns task garbage: tasks of deleted services and of removed slots are told
// to go (DesiredState remove) and deleted once stopped; history beyond the
// retention limit (TaskHistoryRetentionLimit, default 5 per slot) is deleted.
import { isTerminal } from '../../common/taskstate.js';
import type { Service, Task } from '../../common/types.js';
import type { Pass } from './context.js';
import { byCreated, groupBy, isDesired } from './tasks.js';

/** a task with nowhere left to run can be deleted at once */
function gone(p: Pass, t: Task): boolean {
  return isTerminal(t.Status.State) || !t.NodeID || !p.node(t.NodeID) || p.node(t.NodeID)!.Status.State === 'down';
}

export function reap(p: Pass, svc: Service | undefined, tasks: Task[], retention: number): void {
  for (const t of tasks) {
    const removing = !svc || t.DesiredState === 'remove';
    if (!removing) continue;
    if (gone(p, t)) p.tx.remove('tasks', t.ID);
    else if (t.DesiredState !== 'remove') p.tx.update('tasks', { ...t, DesiredState: 'remove' });
  }
  if (!svc) return;
  const keep = Math.max(retention, 1);
  const groups = groupBy(tasks.filter((t) => t.DesiredState !== 'remove'), (t) => t.Slot ?? t.NodeID);
  for (const list of groups.values()) {
    if (list.length <= keep) continue;
    const old = list.filter((t) => !isDesired(t) && isTerminal(t.Status.State)).sort(byCreated);
    for (const t of old.slice(0, Math.min(old.length, list.length - keep))) p.tx.remove('tasks', t.ID);
  }
}
