// Owns pure placement of one scheduling group (tasks with the same service and
// spec): run the filters once per node, then hand tasks out with a strategy,
// honouring placement preferences (spread over node.labels.X: the branch with
// the fewest tasks of the service first). Placements are recorded on the
// NodeInfos at once so later groups see them. No store, no I/O.
import { nodeAttribute } from './constraints.js';
import {
  DYNAMIC_FILTERS, FILTERS, nodeRejection, passes, STATIC_FILTERS, staticKey, unschedulableReason, type TaskRequest,
} from './filters.js';
import type { NodeInfo, TaskDemand } from './nodeinfo.js';
import { bestNode, makePicker, type Picker, type PickerOptions, type StrategyName } from './strategy.js';

export interface PlaceOptions extends PickerOptions {
  strategy?: StrategyName;
  /** static-filter verdicts shared by the groups of one pass over the same nodes */
  cache?: StaticCache;
}

/**
 * Remembers which nodes pass the static filters (ready, availability,
 * constraints, platform) per distinct constraint/platform set, so groups
 * asking the same only run the dynamic filters. Valid for one pass: build a
 * new one whenever nodes change.
 */
export class StaticCache {
  private readonly byKey = new Map<string, NodeInfo[]>();
  constructor(readonly nodes: readonly NodeInfo[]) {}

  candidates(req: TaskRequest): NodeInfo[] {
    const key = staticKey(req);
    let list = this.byKey.get(key);
    if (!list) {
      list = this.nodes.filter((ni) => passes(req, ni, STATIC_FILTERS));
      this.byKey.set(key, list);
    }
    return list;
  }
}

export interface GroupResult {
  /** task id → node it was placed on */
  placed: Map<string, NodeInfo>;
  /** tasks that fit nowhere, in input order */
  unplaced: string[];
  /** Swarm-style reason for the unplaced ones */
  reason?: string;
}

export function demandOf(req: TaskRequest): TaskDemand {
  return { serviceId: req.serviceId, nanoCpus: req.nanoCpus, memoryBytes: req.memoryBytes, hostPorts: req.hostPorts, active: true };
}

/** one level of the preference tree: takes a task and records it, or says it cannot */
interface Bucket {
  count: number;
  take(taskId: string): NodeInfo | undefined;
}

class Leaf implements Bucket {
  constructor(public count: number, private readonly picker: Picker, private readonly commit: (id: string, ni: NodeInfo) => boolean) {}

  take(taskId: string): NodeInfo | undefined {
    const ni = this.picker.peek();
    if (!ni) return undefined;
    this.picker.placed(this.commit(taskId, ni));
    this.count++;
    return ni;
  }
}

class Branch implements Bucket {
  private readonly live: Bucket[];
  count: number;
  constructor(children: Bucket[]) {
    this.live = children;
    this.count = children.reduce((s, c) => s + c.count, 0);
  }

  take(taskId: string): NodeInfo | undefined {
    while (this.live.length > 0) {
      let best = 0;
      for (let i = 1; i < this.live.length; i++) if (this.live[i]!.count < this.live[best]!.count) best = i;
      const ni = this.live[best]!.take(taskId);
      if (ni) {
        this.count++;
        return ni;
      }
      this.live.splice(best, 1);
    }
    return undefined;
  }
}

function buildBucket(nodes: readonly NodeInfo[], levels: readonly string[], req: TaskRequest, opts: PlaceOptions,
  commit: (id: string, ni: NodeInfo) => boolean): Bucket {
  if (levels.length === 0) {
    let count = 0;
    for (const ni of nodes) count += ni.serviceTasks(req.serviceId);
    return new Leaf(count, makePicker(opts.strategy ?? 'spread', nodes, req.serviceId, opts), commit);
  }
  const [descriptor, ...rest] = levels;
  const groups = new Map<string, NodeInfo[]>();
  for (const ni of nodes) {
    const v = nodeAttribute(ni.node, descriptor!) ?? '';
    const g = groups.get(v);
    if (g) g.push(ni);
    else groups.set(v, [ni]);
  }
  const keys = [...groups.keys()].sort();
  return new Branch(keys.map((k) => buildBucket(groups.get(k)!, rest, req, opts, commit)));
}

/**
 * Places the tasks `taskIds` (all asking `req`) on `nodes`, recording each
 * placement on its NodeInfo. Tasks that fit nowhere are returned with a reason.
 */
export function placeGroup(nodes: readonly NodeInfo[], req: TaskRequest, taskIds: readonly string[], opts: PlaceOptions = {}): GroupResult {
  const placed = new Map<string, NodeInfo>();
  const cached = opts.cache && opts.cache.nodes === nodes ? opts.cache.candidates(req) : undefined;
  const fits = cached ? (ni: NodeInfo) => passes(req, ni, DYNAMIC_FILTERS) : (ni: NodeInfo) => passes(req, ni, FILTERS);
  const demand = demandOf(req);
  const strategy = opts.strategy ?? 'spread';
  if (taskIds.length === 1 && req.spreadOver.length === 0) {
    const ni = bestNode(strategy, cached ?? nodes, req.serviceId, fits, opts);
    if (ni) {
      ni.addTask(taskIds[0]!, demand);
      placed.set(taskIds[0]!, ni);
      return { placed, unplaced: [] };
    }
    return { placed, unplaced: taskIds.slice(), reason: unschedulableReason(req, nodes) };
  }
  const eligible = (cached ?? nodes).filter(fits);
  const commit = (id: string, ni: NodeInfo): boolean => {
    ni.addTask(id, demand);
    return passes(req, ni, DYNAMIC_FILTERS);
  };
  const root = buildBucket(eligible, req.spreadOver, req, { ...opts, strategy }, commit);
  let i = 0;
  for (; i < taskIds.length; i++) {
    const id = taskIds[i]!;
    const ni = root.take(id);
    if (!ni) break;
    placed.set(id, ni);
  }
  if (i === taskIds.length) return { placed, unplaced: [] };
  return { placed, unplaced: taskIds.slice(i), reason: unschedulableReason(req, nodes) };
}

/**
 * A task whose node is already chosen (global services): checks that node
 * only and records the task on it when it fits. Returns undefined on success,
 * else the reason in Swarm's form for pre-assigned tasks.
 */
export function placeOnNode(ni: NodeInfo | undefined, req: TaskRequest, taskId: string): string | undefined {
  if (!ni) return 'node not found';
  const why = nodeRejection(req, ni);
  if (why !== undefined) return why;
  ni.addTask(taskId, demandOf(req));
  return undefined;
}
