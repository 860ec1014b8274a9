// Owns global services: one desired task on every node that is active and
// matches the constraints; tasks leave nodes that are drained, removed or no
// longer match. A node that is down keeps its task (nothing moves elsewhere).
import type { Node, Service, Task } from '../../common/types.js';
import { matchConstraints, parseConstraints } from '../scheduler/constraints.js';
import type { Pass } from './context.js';
import { byCreated, groupBy, isDesired } from './tasks.js';
import { isTerminal } from '../../common/taskstate.js';

export function eligibleForGlobal(svc: Service, n: Node): boolean {
  if (n.Spec.Availability !== 'active' || n.Status.State === 'down') return false;
  try {
    return matchConstraints(parseConstraints(svc.Spec.TaskTemplate.Placement?.Constraints), n);
  } catch {
    return false; // an invalid constraint matches no node (the API rejects them up front)
  }
}

export function reconcileGlobal(p: Pass, svc: Service, tasks: Task[]): void {
  const byNode = groupBy(tasks.filter(isDesired), (t) => t.NodeID);
  for (const n of p.allNodes()) {
    const list = (byNode.get(n.ID) ?? []).sort(byCreated);
    byNode.delete(n.ID);
    if (!eligibleForGlobal(svc, n)) {
      if (n.Status.State !== 'down' || n.Spec.Availability !== 'active') for (const t of list) p.stop(t);
      continue;
    }
    for (const t of list.slice(0, -1)) p.stop(t);
    const cur = list[list.length - 1];
    if (cur && !isTerminal(cur.Status.State)) continue;
    if (cur && !p.replaceDead(svc, cur, `${svc.ID}/${n.ID}`, false)) continue;
    p.create(svc, { nodeId: n.ID });
  }
  // tasks on nodes that no longer exist
  for (const list of byNode.values()) for (const t of list) p.stop(t);
}
