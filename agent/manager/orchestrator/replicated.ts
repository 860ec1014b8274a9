// Owns replicated services: slots 1..Replicas each hold one desired task;
// dead tasks are replaced per the restart policy; slots above the count stop.
import { isLive } from '../../common/taskstate.js';
import type { Service, Task } from '../../common/types.js';
import type { Pass } from './context.js';
import { byCreated, groupBy, isDead, isDesired, replicas } from './tasks.js';

export function reconcileReplicated(p: Pass, svc: Service, tasks: Task[]): void {
  const want = replicas(svc);
  const slots = groupBy(tasks.filter(isDesired), (t) => t.Slot);
  for (const [slot, list] of slots) {
    if ((slot as number) > want) for (const t of list) p.tx.update('tasks', { ...t, DesiredState: 'remove' });
  }
  for (let slot = 1; slot <= want; slot++) {
    const list = (slots.get(slot) ?? []).sort(byCreated);
    // more than one desired task: a start-first update in flight keeps the old
    // one until the newest runs; anything else is a leftover
    if (list.length > 1) {
      const newest = list[list.length - 1];
      if (newest.Status.State === 'running' || !list.slice(0, -1).some(isLive)) {
        for (const t of list.slice(0, -1)) p.stop(t);
        list.splice(0, list.length - 1);
      }
    }
    const live = list.filter((t) => !isDead(t, p.node(t.NodeID)));
    if (live.length) continue;
    const dead = list[list.length - 1];
    if (dead) {
      const nodeLost = !!dead.NodeID && isLive(dead);
      if (!p.replaceDead(svc, dead, `${svc.ID}/${slot}`, nodeLost)) continue;
    }
    p.create(svc, { slot });
  }
}
