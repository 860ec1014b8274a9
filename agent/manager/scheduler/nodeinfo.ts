// Owns the scheduler's per-node bookkeeping: which tasks occupy a node and the
// counters the filters and strategies read (reserved CPU/memory, tasks per
// service, host ports in use). Counters change incrementally on add/remove;
// nothing here rescans tasks.
import type { Node, Service, Task, TaskState } from '../../common/types.js';

/** what a task takes from the node it sits on */
export interface TaskDemand {
  serviceId: string;
  nanoCpus: number;
  memoryBytes: number;
  /** host-mode published ports as 'proto/port' */
  hostPorts: readonly string[];
  /** counts toward tasks-per-service and total tasks (DesiredState <= running) */
  active: boolean;
}

const STATE_RANK: Record<TaskState, number> = {
  new: 0, pending: 1, assigned: 2, accepted: 3, preparing: 4, ready: 5, starting: 6,
  running: 7, complete: 8, shutdown: 9, failed: 10, rejected: 11, remove: 12, orphaned: 13,
};
export const stateRank = (s: TaskState): number => STATE_RANK[s] ?? 0;
const ASSIGNED = STATE_RANK.assigned;
const RUNNING = STATE_RANK.running;

/** host-mode published ports of a service as 'proto/port' */
export function hostPortsOf(service: Service | undefined): string[] {
  const ports = service?.Spec.EndpointSpec?.Ports;
  if (!ports) return [];
  const out: string[] = [];
  for (const p of ports) {
    if (p.PublishMode === 'host' && p.PublishedPort) out.push(`${p.Protocol ?? 'tcp'}/${p.PublishedPort}`);
  }
  return out;
}

/**
 * The demand a task puts on its node, or undefined when it occupies nothing:
 * it has no node, has not been assigned yet (pending ones are work items) or
 * has finished. A task told to stop still holds resources until it stops.
 */
export function occupancy(task: Task, service: Service | undefined): TaskDemand | undefined {
  if (!task.NodeID) return undefined;
  const r = stateRank(task.Status.State);
  if (r < ASSIGNED || r > RUNNING) return undefined;
  const res = task.Spec.Resources?.Reservations;
  return {
    serviceId: task.ServiceID,
    nanoCpus: res?.NanoCPUs ?? 0,
    memoryBytes: res?.MemoryBytes ?? 0,
    hostPorts: hostPortsOf(service),
    active: stateRank(task.DesiredState) <= RUNNING,
  };
}

let nextSeq = 0;

export class NodeInfo {
  /** creation order; the final tie-break of every strategy */
  readonly seq = nextSeq++;
  reservedCpu = 0;
  reservedMem = 0;
  /** tasks with DesiredState <= running */
  activeTasks = 0;
  readonly tasks = new Map<string, TaskDemand>();
  private readonly perService = new Map<string, number>();
  private readonly ports = new Map<string, number>();

  constructor(public node: Node) {}

  get id(): string { return this.node.ID; }
  get totalCpu(): number { return this.node.Description?.Resources?.NanoCPUs ?? 0; }
  get totalMem(): number { return this.node.Description?.Resources?.MemoryBytes ?? 0; }
  get freeCpu(): number { return this.totalCpu - this.reservedCpu; }
  get freeMem(): number { return this.totalMem - this.reservedMem; }

  /** reserved share of CPU plus reserved share of memory (0..2) */
  fill(): number {
    const c = this.totalCpu > 0 ? this.reservedCpu / this.totalCpu : 0;
    const m = this.totalMem > 0 ? this.reservedMem / this.totalMem : 0;
    return c + m;
  }

  serviceTasks(serviceId: string): number {
    return this.perService.get(serviceId) ?? 0;
  }

  portInUse(port: string): boolean {
    return (this.ports.get(port) ?? 0) > 0;
  }

  /** records a task on this node (replacing an earlier record of the same id) */
  addTask(taskId: string, d: TaskDemand): void {
    if (this.tasks.has(taskId)) this.removeTask(taskId);
    this.tasks.set(taskId, d);
    this.reservedCpu += d.nanoCpus;
    this.reservedMem += d.memoryBytes;
    if (d.active) {
      this.activeTasks++;
      this.perService.set(d.serviceId, (this.perService.get(d.serviceId) ?? 0) + 1);
    }
    for (const p of d.hostPorts) this.ports.set(p, (this.ports.get(p) ?? 0) + 1);
  }

  removeTask(taskId: string): boolean {
    const d = this.tasks.get(taskId);
    if (!d) return false;
    this.tasks.delete(taskId);
    this.reservedCpu -= d.nanoCpus;
    this.reservedMem -= d.memoryBytes;
    if (d.active) {
      this.activeTasks--;
      const n = (this.perService.get(d.serviceId) ?? 1) - 1;
      if (n > 0) this.perService.set(d.serviceId, n);
      else this.perService.delete(d.serviceId);
    }
    for (const p of d.hostPorts) {
      const n = (this.ports.get(p) ?? 1) - 1;
      if (n > 0) this.ports.set(p, n);
      else this.ports.delete(p);
    }
    return true;
  }
}
