// Owns builders of in-memory nodes, services and tasks for the scheduler's
// unit tests and benchmark (complete Swarm shapes with small, explicit inputs).
import { newId, nowIso } from '../../common/ids.js';
import type { Node, NodeAvailability, NodeRole, NodeState, Placement, PortConfig, Service, Task, TaskState } from '../../common/types.js';

export const GiB = 1024 ** 3;
export const CPU = 1e9;

export interface NodeInput {
  id?: string;
  hostname?: string;
  state?: NodeState;
  availability?: NodeAvailability;
  role?: NodeRole;
  labels?: Record<string, string>;
  engineLabels?: Record<string, string>;
  /** cores (default 4) */
  cpus?: number;
  /** GiB (default 8) */
  memGiB?: number;
  os?: string;
  arch?: string;
  addr?: string;
}

export function makeNode(p: NodeInput = {}): Node {
  const now = nowIso();
  return {
    ID: p.id ?? newId(),
    Version: { Index: 1 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: { Labels: p.labels ?? {}, Role: p.role ?? 'worker', Availability: p.availability ?? 'active' },
    Description: {
      Hostname: p.hostname ?? 'host',
      Platform: { Architecture: p.arch ?? 'x86_64', OS: p.os ?? 'linux' },
      Resources: { NanoCPUs: (p.cpus ?? 4) * CPU, MemoryBytes: (p.memGiB ?? 8) * GiB },
      Engine: { EngineVersion: '28.0.0', Labels: p.engineLabels ?? {}, Plugins: [] },
    },
    Status: { State: p.state ?? 'ready', Addr: p.addr ?? '10.0.0.1' },
  };
}

export interface ServiceInput {
  id?: string;
  name?: string;
  labels?: Record<string, string>;
  ports?: PortConfig[];
}

export function makeService(p: ServiceInput = {}): Service {
  const now = nowIso();
  const endpoint = { Mode: 'vip' as const, Ports: p.ports ?? [] };
  return {
    ID: p.id ?? newId(),
    Version: { Index: 1 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: {
      Name: p.name ?? 'svc',
      Labels: p.labels ?? {},
      TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } },
      Mode: { Replicated: { Replicas: 1 } },
      EndpointSpec: endpoint,
    },
    Endpoint: { Spec: endpoint },
  };
}

export interface TaskInput {
  id?: string;
  serviceId: string;
  state?: TaskState;
  desired?: TaskState;
  nodeId?: string;
  /** reserved cores */
  cpus?: number;
  /** reserved GiB */
  memGiB?: number;
  constraints?: string[];
  platforms?: Placement['Platforms'];
  maxReplicas?: number;
  spreadOver?: string[];
  slot?: number;
}

export function makeTask(p: TaskInput): Task {
  const now = nowIso();
  const placement: Placement = {};
  if (p.constraints) placement.Constraints = p.constraints;
  if (p.platforms) placement.Platforms = p.platforms;
  if (p.maxReplicas) placement.MaxReplicas = p.maxReplicas;
  if (p.spreadOver) placement.Preferences = p.spreadOver.map((d) => ({ Spread: { SpreadDescriptor: d } }));
  const reserve = p.cpus || p.memGiB
    ? { Reservations: { NanoCPUs: Math.round((p.cpus ?? 0) * CPU), MemoryBytes: Math.round((p.memGiB ?? 0) * GiB) } }
    : undefined;
  return {
    ID: p.id ?? newId(),
    Version: { Index: 1 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: {
      ContainerSpec: { Image: 'local/busybox:1' },
      ...(reserve ? { Resources: reserve } : {}),
      ...(Object.keys(placement).length ? { Placement: placement } : {}),
    },
    ServiceID: p.serviceId,
    Slot: p.slot,
    NodeID: p.nodeId,
    Status: { State: p.state ?? 'pending', Message: 'pending task scheduling', Timestamp: now },
    DesiredState: p.desired ?? 'running',
  };
}
