// Owns task reconciliation on one node: the full desired set of tasks from
// the manager (setAssignments) against the containers dockerd runs for this
// node id. One TaskRunner per assigned task; tasks that leave the set have
// their containers stopped and removed; after start() the containers of an
// earlier agent life are adopted (never a second container for a task) and
// containers of tasks not in the first assignment set are removed as orphans.
// Status updates go out in batches through opts.report.
//
// Service name used in container names and labels: opts.serviceName(task)
// when given, else the task's ServiceID (the worker does not see services).
import type Dockerode from 'dockerode';
import type { Labels, Task, TaskStatus } from '../common/types.js';
import { logger } from '../common/log.js';
import { DEFAULT_STOP_GRACE_NS } from './executor/container.js';
import { DockerExecutor, dockerMessage, type ContainerEvent, type EventWatch } from './executor/docker.js';
import { Limiter, TaskRunner, type WorkerHooks } from './taskrunner.js';

export type { WorkerHooks } from './taskrunner.js';

const log = logger('worker');

export interface WorkerOptions {
  docker: Dockerode;
  nodeId: string;
  report: (updates: { taskId: string; status: TaskStatus }[]) => void;
  hooks?: WorkerHooks;
  /** name of the task's service, for container names and labels; default task.ServiceID */
  serviceName?: (task: Task) => string;
  /** the service's labels (only `com.docker.stack.namespace` is used) */
  serviceLabels?: (task: Task) => Labels | undefined;
  /** container network mode; default `none` (netd attaches networks in afterStart) */
  networkMode?: (task: Task) => string;
  /** bound on containers being created/started at once; default 8 */
  maxParallelStarts?: number;
  /** bound on one image pull attempt; default 30 s */
  pullTimeoutMs?: number;
}

export class Worker {
  readonly executor: DockerExecutor;
  private readonly runners = new Map<string, TaskRunner>();
  private desired = new Map<string, Task>();
  /** containers found by start(), by task id; consumed by the first setAssignments */
  private discovered?: Map<string, { id: string; state: string }[]>;
  /** containers without a task id label (not ours to keep) */
  private strays: string[] = [];
  private watch?: EventWatch;
  private pending: { taskId: string; status: TaskStatus }[] = [];
  private flushScheduled = false;
  private readonly limiter: Limiter;
  private started = false;
  private stopped = false;
  private deferred?: Task[];
  private readonly orphanRemovals = new Set<Promise<void>>();

  constructor(private readonly opts: WorkerOptions) {
    this.executor = new DockerExecutor(opts.docker, { nodeId: opts.nodeId, pullTimeoutMs: opts.pullTimeoutMs });
    this.limiter = new Limiter(Math.max(1, opts.maxParallelStarts ?? 8));
  }

  /** Discovers this node's existing containers and starts watching dockerd's events. */
  async start(): Promise<void> {
    const found = await this.executor.list();
    const byTask = new Map<string, { id: string; state: string }[]>();
    for (const c of found) {
      if (!c.taskId) { this.strays.push(c.id); continue; }
      const list = byTask.get(c.taskId) ?? [];
      list.push({ id: c.id, state: c.state });
      byTask.set(c.taskId, list);
    }
    this.discovered = byTask;
    this.watch = this.executor.watch({
      onEvent: (e) => this.onEvent(e),
      onConnect: () => { for (const r of this.runners.values()) void r.resync(); },
    });
    this.started = true;
    if (this.deferred) {
      const tasks = this.deferred;
      this.deferred = undefined;
      this.setAssignments(tasks);
    }
  }

  /** The full desired set of tasks for this node. Idempotent; call as often as you like. */
  setAssignments(tasks: Task[]): void {
    if (this.stopped) return;
    if (!this.started) { this.deferred = tasks; return; }
    this.desired = new Map(tasks.map((t) => [t.ID, t]));

    const discovered = this.discovered;
    this.discovered = undefined;
    if (discovered) this.removeOrphans(discovered);

    for (const task of tasks) {
      const r = this.runners.get(task.ID);
      if (r) {
        if (!r.isRetiring) r.update(task);
        continue; // a retiring runner is replaced when it finishes
      }
      const adopt = discovered?.get(task.ID);
      this.spawn(task, adopt ? pickKeeper(adopt) : undefined);
    }
    for (const [id, r] of this.runners) {
      if (this.desired.has(id) || r.isRetiring) continue;
      void r.retire().then(() => {
        if (this.runners.get(id) === r) this.runners.delete(id);
        const again = this.desired.get(id);
        if (again && !this.stopped) this.spawn(again);
      });
    }
  }

  /** Stops watching and driving tasks; containers keep running for the next agent to adopt. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.close();
    for (const r of this.runners.values()) r.close();
    await Promise.allSettled([...this.orphanRemovals]);
    this.flush();
  }

  /** Resolves when every runner's pending removals and orphan removals are done (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.orphanRemovals]);
  }

  private spawn(task: Task, adopt?: { id: string }): void {
    const r = new TaskRunner(task, {
      exec: this.executor,
      context: (t) => ({
        serviceName: this.opts.serviceName?.(t) ?? t.ServiceID,
        nodeId: this.opts.nodeId,
        serviceLabels: this.opts.serviceLabels?.(t),
        networkMode: this.opts.networkMode?.(t),
      }),
      hooks: this.opts.hooks ?? {},
      limiter: this.limiter,
      report: (taskId, status) => this.queueReport(taskId, status),
    }, adopt);
    this.runners.set(task.ID, r);
    r.kick();
  }

  private removeOrphans(discovered: Map<string, { id: string; state: string }[]>): void {
    const doomed: string[] = [...this.strays];
    this.strays = [];
    for (const [taskId, containers] of discovered) {
      const task = this.desired.get(taskId);
      if (!task) { doomed.push(...containers.map((c) => c.id)); continue; }
      const keep = pickKeeper(containers);
      for (const c of containers) if (c.id !== keep.id) doomed.push(c.id);
    }
    for (const id of doomed) {
      const p = this.removeOrphan(id).finally(() => this.orphanRemovals.delete(p));
      this.orphanRemovals.add(p);
    }
  }

  private async removeOrphan(id: string): Promise<void> {
    try {
      // unknown task: Docker's default grace period, unless the container says otherwise
      const info = await this.opts.docker.getContainer(id).inspect().catch(() => undefined);
      const grace = (info?.Config as { StopTimeout?: number } | undefined)?.StopTimeout ?? DEFAULT_STOP_GRACE_NS / 1e9;
      await this.executor.stop(id, grace);
      await this.executor.remove(id);
      log.info({ container: id }, 'removed orphan container');
    } catch (err) {
      log.warn({ container: id, err: dockerMessage(err) }, 'removing orphan container failed');
    }
  }

  private onEvent(e: ContainerEvent): void {
    if (!e.taskId) return;
    this.runners.get(e.taskId)?.onEvent(e);
  }

  private queueReport(taskId: string, status: TaskStatus): void {
    if (this.stopped) return;
    this.pending.push({ taskId, status });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.opts.report(batch);
    } catch (err) {
      log.error({ err: dockerMessage(err) }, 'report callback failed');
    }
  }
}

/** Of several containers for one task, keep the running one (else the first). */
function pickKeeper(containers: { id: string; state: string }[]): { id: string; state: string } {
  return containers.find((c) => c.state === 'running') ?? containers[0]!;
}
