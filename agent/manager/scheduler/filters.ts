// Owns node eligibility: the filter pipeline (ready, availability, resources,
// constraints, platform, host ports, max replicas per node). Each filter says
// why it rejects a node; the pipeline counts rejections per filter and words
// them as Swarm does: "no suitable node (insufficient resources on 3 nodes;
// 1 node not available for new tasks)". Static filters depend only on the
// node; dynamic ones change as tasks are placed and are rechecked per placement.
import type { Placement, Service, Task } from '../../common/types.js';
import { ConstraintError, matchConstraints, parseConstraints, type Constraint } from './constraints.js';
import { hostPortsOf, type NodeInfo } from './nodeinfo.js';

/** what every task of a scheduling group asks of a node */
export interface TaskRequest {
  serviceId: string;
  nanoCpus: number;
  memoryBytes: number;
  /** host-mode published ports as 'proto/port' */
  hostPorts: readonly string[];
  constraints: readonly Constraint[];
  /** set when Placement.Constraints does not parse; no node is then eligible */
  constraintError?: string;
  platforms: NonNullable<Placement['Platforms']>;
  /** 0 = unlimited */
  maxReplicas: number;
  /** placement preference descriptors, e.g. 'node.labels.zone' */
  spreadOver: string[];
}

export function taskRequest(task: Task, service: Service | undefined): TaskRequest {
  const placement = task.Spec.Placement;
  const res = task.Spec.Resources?.Reservations;
  let constraints: Constraint[] = [];
  let constraintError: string | undefined;
  try {
    constraints = parseConstraints(placement?.Constraints);
  } catch (err) {
    if (!(err instanceof ConstraintError)) throw err;
    constraintError = err.message;
  }
  const spreadOver: string[] = [];
  for (const p of placement?.Preferences ?? []) if (p.Spread?.SpreadDescriptor) spreadOver.push(p.Spread.SpreadDescriptor);
  return {
    serviceId: task.ServiceID,
    nanoCpus: res?.NanoCPUs ?? 0,
    memoryBytes: res?.MemoryBytes ?? 0,
    hostPorts: hostPortsOf(service),
    constraints,
    constraintError,
    platforms: placement?.Platforms ?? [],
    maxReplicas: placement?.MaxReplicas ?? 0,
    spreadOver,
  };
}

const plural = (n: number, what: string) => (n === 1 ? `1 ${what}` : `${n} ${what}s`);

export interface Filter {
  name: string;
  /** rejections of filters with the same group are counted together */
  group: string;
  /** its verdict can change when tasks are placed on the node */
  dynamic: boolean;
  /** undefined when the node passes, else why it is rejected */
  check(req: TaskRequest, ni: NodeInfo): string | undefined;
  /** Swarm's wording for `nodes` rejections */
  explain(nodes: number, req: TaskRequest): string;
}

const notAvailable = (n: number) => `${plural(n, 'node')} not available for new tasks`;

export const readyFilter: Filter = {
  name: 'ready', group: 'available', dynamic: false,
  check: (_req, ni) => (ni.node.Status?.State === 'ready' ? undefined : `node is ${ni.node.Status?.State ?? 'unknown'}`),
  explain: notAvailable,
};

export const availabilityFilter: Filter = {
  name: 'availability', group: 'available', dynamic: false,
  check: (_req, ni) => (ni.node.Spec.Availability === 'active' ? undefined : `node availability is ${ni.node.Spec.Availability}`),
  explain: notAvailable,
};

export const resourceFilter: Filter = {
  name: 'resources', group: 'resources', dynamic: true,
  check(req, ni) {
    if (req.nanoCpus > 0 && req.nanoCpus > ni.freeCpu) return `insufficient CPU: ${req.nanoCpus} requested, ${Math.max(0, ni.freeCpu)} free`;
    if (req.memoryBytes > 0 && req.memoryBytes > ni.freeMem) return `insufficient memory: ${req.memoryBytes} requested, ${Math.max(0, ni.freeMem)} free`;
    return undefined;
  },
  explain: (n) => `insufficient resources on ${plural(n, 'node')}`,
};

export const constraintFilter: Filter = {
  name: 'constraints', group: 'constraints', dynamic: false,
  check(req, ni) {
    if (req.constraintError) return `invalid constraint: ${req.constraintError}`;
    return matchConstraints(req.constraints, ni.node) ? undefined : 'scheduling constraints not satisfied';
  },
  explain: (n, req) => (req.constraintError
    ? `invalid constraint: ${req.constraintError}`
    : `scheduling constraints not satisfied on ${plural(n, 'node')}`),
};

function normArch(a: string | undefined): string {
  const s = (a ?? '').toLowerCase();
  if (s === 'x86_64') return 'amd64';
  if (s === 'aarch64') return 'arm64';
  return s;
}

export const platformFilter: Filter = {
  name: 'platform', group: 'platform', dynamic: false,
  check(req, ni) {
    if (req.platforms.length === 0) return undefined;
    const arch = normArch(ni.node.Description?.Platform?.Architecture);
    const os = (ni.node.Description?.Platform?.OS ?? '').toLowerCase();
    for (const p of req.platforms) {
      if ((!p.Architecture || normArch(p.Architecture) === arch) && (!p.OS || p.OS.toLowerCase() === os)) return undefined;
    }
    return `unsupported platform ${os}/${arch}`;
  },
  explain: (n) => `unsupported platform on ${plural(n, 'node')}`,
};

export const hostPortFilter: Filter = {
  name: 'host-ports', group: 'host-ports', dynamic: true,
  check(req, ni) {
    for (const p of req.hostPorts) if (ni.portInUse(p)) return `host-mode port ${p} already in use`;
    return undefined;
  },
  explain: (n) => `host-mode port already in use on ${plural(n, 'node')}`,
};

export const maxReplicasFilter: Filter = {
  name: 'max-replicas', group: 'max-replicas', dynamic: true,
  check: (req, ni) => (req.maxReplicas > 0 && ni.serviceTasks(req.serviceId) >= req.maxReplicas
    ? `max replicas per node limit (${req.maxReplicas}) reached`
    : undefined),
  explain: () => 'max replicas per node limit exceed',
};

/** the pipeline, in Swarm's order */
export const FILTERS: readonly Filter[] = [
  readyFilter, availabilityFilter, resourceFilter, constraintFilter, platformFilter, hostPortFilter, maxReplicasFilter,
];
export const DYNAMIC_FILTERS: readonly Filter[] = FILTERS.filter((f) => f.dynamic);
export const STATIC_FILTERS: readonly Filter[] = FILTERS.filter((f) => !f.dynamic);

/** requests with equal keys get the same verdicts from the static filters */
export function staticKey(req: TaskRequest): string {
  if (req.constraints.length === 0 && !req.constraintError && req.platforms.length === 0) return '';
  return JSON.stringify([req.constraints, req.constraintError ?? null, req.platforms]);
}

/** index in `filters` of the first filter rejecting the node, or -1 when it passes */
export function firstRejection(req: TaskRequest, ni: NodeInfo, filters: readonly Filter[] = FILTERS): number {
  for (let i = 0; i < filters.length; i++) if (filters[i]!.check(req, ni) !== undefined) return i;
  return -1;
}

export function passes(req: TaskRequest, ni: NodeInfo, filters: readonly Filter[] = FILTERS): boolean {
  return firstRejection(req, ni, filters) < 0;
}

/** per-filter rejection counts worded as Swarm does, most frequent first */
export function explainRejections(counts: readonly number[], req: TaskRequest, filters: readonly Filter[] = FILTERS): string {
  const byGroup = new Map<string, { filter: Filter; count: number }>();
  filters.forEach((f, i) => {
    const c = counts[i] ?? 0;
    if (c === 0) return;
    const g = byGroup.get(f.group);
    if (g) g.count += c;
    else byGroup.set(f.group, { filter: f, count: c });
  });
  return [...byGroup.values()]
    .sort((a, b) => b.count - a.count)
    .map((g) => g.filter.explain(g.count, req))
    .join('; ');
}

/** why no node in `nodes` takes the task: "no suitable node (…)" */
export function unschedulableReason(req: TaskRequest, nodes: Iterable<NodeInfo>, filters: readonly Filter[] = FILTERS): string {
  const counts = new Array<number>(filters.length).fill(0);
  for (const ni of nodes) {
    const i = firstRejection(req, ni, filters);
    if (i >= 0) counts[i]!++;
  }
  const why = explainRejections(counts, req, filters);
  return why ? `no suitable node (${why})` : 'no suitable node';
}

/** why one given node does not take the task (Swarm's form for pre-assigned tasks), or undefined if it does */
export function nodeRejection(req: TaskRequest, ni: NodeInfo, filters: readonly Filter[] = FILTERS): string | undefined {
  const i = firstRejection(req, ni, filters);
  if (i < 0) return undefined;
  const counts = new Array<number>(filters.length).fill(0);
  counts[i] = 1;
  return explainRejections(counts, req, filters);
}
