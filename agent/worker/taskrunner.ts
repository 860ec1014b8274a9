// Owns the life of one task on this node: a step function, as swarmkit's
// agent/exec/controller.go Do(), that moves the task forward through Docker's
// task states (assigned → accepted → preparing → ready → starting → running →
// complete | failed | shutdown; rejected when preparing fails) using the
// DockerExecutor. Steps run one at a time per task; container events and new
// assignments only update fields and kick the loop. States never go backwards.
import type Dockerode from 'dockerode';
import { TASK_STATES, type Task, type TaskState, type TaskStatus } from '../common/types.js';
import { nowIso } from '../common/ids.js';
import { logger } from '../common/log.js';
import { containerCreateOptions, containerName, stopGraceSeconds, type ContainerContext } from './executor/container.js';
import { dockerMessage, type ContainerEvent, type ContainerObservation, type DockerExecutor, type Health } from './executor/docker.js';

const log = logger('worker/task');

/** longest wait between "desired state left running" and stopping a networked task */
export const DRAIN_MAX_MS = 1000;

/**
 * How long a running task stays up after the orchestrator decided to stop it,
 * so every node's routing mesh and VIPs (which learn from the network map a
 * few tens of ms later) drop it from their backend sets first: min(1 s, stop
 * grace period); 0 for tasks without network attachments.
 */
export function drainMs(task: Task): number {
  if (!(task.NetworksAttachments?.length ?? 0)) return 0;
  const graceMs = (task.Spec.ContainerSpec.StopGracePeriod ?? 10e9) / 1e6;
  return Math.max(0, Math.min(DRAIN_MAX_MS, graceMs));
}

export const rank = (s: TaskState): number => TASK_STATES.indexOf(s);

export interface WorkerHooks {
  /** may adjust the create options (e.g. DNS servers) before the container is created */
  beforeCreate?(task: Task, options: Dockerode.ContainerCreateOptions): Promise<void> | void;
  /**
   * after the container started, before `running` is reported (netd attaches
   * networks here). Also called for a running container adopted after an agent
   * restart, so it must be idempotent. A failure fails the task.
   */
  afterStart?(task: Task, container: { id: string; pid: number }): Promise<void>;
  /** after the container stopped, before it is removed */
  beforeRemove?(task: Task): Promise<void>;
}

/** A counting semaphore: bounds parallel container creates/starts. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try { return await fn(); } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

export interface RunnerDeps {
  exec: DockerExecutor;
  context(task: Task): ContainerContext;
  hooks: WorkerHooks;
  limiter: Limiter;
  report(taskId: string, status: TaskStatus): void;
}

export class TaskRunner {
  private state: TaskState;
  private message: string;
  private containerId?: string;
  private pid = 0;
  private exitCode?: number;
  private exited = false;
  private health?: Health;
  private started = false;
  private synced = false;
  private retiring = false;
  private drained = false;
  private closed = false;
  private busy = false;
  private again = false;
  private readonly retiredWaiters: (() => void)[] = [];

  constructor(private task: Task, private readonly deps: RunnerDeps, adopt?: { id: string }) {
    const s = task.Status?.State ?? 'assigned';
    this.state = rank(s) < rank('assigned') ? 'assigned' : s;
    this.message = task.Status?.Message ?? '';
    this.containerId = adopt?.id;
  }

  get id(): string { return this.task.ID; }
  get isRetiring(): boolean { return this.retiring; }

  update(task: Task): void {
    this.task = task;
    this.kick();
  }

  /** A container event for this task. */
  onEvent(e: ContainerEvent): void {
    if (!this.containerId || e.id !== this.containerId) return;
    if (e.action === 'die') {
      this.exited = true;
      if (e.exitCode !== undefined) this.exitCode = e.exitCode;
      this.pid = 0;
    } else if (e.action === 'start') {
      this.exited = false;
    } else if (e.action === 'destroy') {
      this.exited = true;
    } else if (e.health) {
      this.health = e.health;
    } else {
      return;
    }
    this.kick();
  }

  /** Re-reads the container after the events stream reconnected. */
  async resync(): Promise<void> {
    if (!this.containerId || this.retiring || this.closed) return;
    try {
      const obs = await this.deps.exec.inspect(this.containerId);
      if (obs) this.observe(obs); else this.exited = true;
      this.kick();
    } catch (err) {
      log.warn({ task: this.id, err: dockerMessage(err) }, 'resync failed');
    }
  }

  /** Stop driving this task (the worker stopped); containers are left as they are. */
  close(): void { this.closed = true; }

  /** Stops and removes the task's container, then resolves; the runner is finished. */
  retire(): Promise<void> {
    this.retiring = true;
    const p = new Promise<void>((r) => this.retiredWaiters.push(r));
    this.kick();
    return p;
  }

  kick(): void {
    if (this.busy) { this.again = true; return; }
    this.busy = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.closed) {
          let progressed: boolean;
          try {
            progressed = await this.step();
          } catch (err) {
            // a step that threw unexpectedly: fail the task rather than crash
            log.error({ task: this.id, err: dockerMessage(err) }, 'task step failed');
            this.fatal(dockerMessage(err));
            progressed = false;
          }
          if (!progressed) break;
        }
      } while (this.again && !this.closed);
    } finally {
      this.busy = false;
    }
  }

  private observe(obs: ContainerObservation): void {
    this.containerId = obs.id;
    this.pid = obs.pid;
    if (obs.health) this.health = obs.health;
    if (!obs.running && (obs.status === 'exited' || obs.status === 'dead')) {
      this.exited = true;
      this.exitCode = obs.exitCode;
    }
  }

  private transition(state: TaskState, message: string, err?: string): boolean {
    if (rank(state) < rank(this.state)) {
      log.error({ task: this.id, from: this.state, to: state }, 'refusing backward state transition');
      return false;
    }
    this.state = state;
    this.message = message;
    this.emit(err);
    return true;
  }

  private emit(err?: string): void {
    const status: TaskStatus = { Timestamp: nowIso(), State: this.state, Message: this.message };
    if (err) status.Err = err;
    if (this.containerId && rank(this.state) >= rank('starting')) {
      status.ContainerStatus = { ContainerID: this.containerId, PID: this.pid, ExitCode: this.exitCode ?? 0 };
    }
    this.deps.report(this.id, status);
  }

  /** Terminal failure: rejected before starting, failed from starting on; the message stays. */
  private fatal(err: string): boolean {
    const to: TaskState = rank(this.state) < rank('starting') ? 'rejected' : 'failed';
    if (rank(this.state) >= rank('complete')) return false;
    this.state = to;
    this.emit(err);
    return true;
  }

  /** First step: find a container from an earlier life (agent restart, crash after create). */
  private async sync(): Promise<void> {
    this.synced = true;
    const name = containerName(this.task, this.deps.context(this.task).serviceName);
    const obs = await this.deps.exec.inspect(this.containerId ?? name);
    if (obs && obs.taskId === this.id) this.observe(obs);
    else this.containerId = undefined;
    if (!obs || obs.taskId !== this.id) {
      // the manager believes it started, but there is no container
      if (rank(this.state) >= rank('starting') && rank(this.state) < rank('complete') && rank(this.task.DesiredState) < rank('shutdown')) {
        this.fatal('task: container not found');
      }
      return;
    }
    if (obs.running && this.state === 'running' && rank(this.task.DesiredState) < rank('shutdown')) {
      // adopted: netd re-attaches, then re-report running
      this.started = true;
      try {
        await this.deps.hooks.afterStart?.(this.task, { id: obs.id, pid: obs.pid });
      } catch (err) {
        await this.stopContainer();
        this.fatal(`task: network attach failed: ${dockerMessage(err)}`);
        return;
      }
      this.emit();
    }
  }

  private async stopContainer(): Promise<void> {
    if (!this.containerId) return;
    await this.deps.exec.stop(this.containerId, stopGraceSeconds(this.task));
    const obs = await this.deps.exec.inspect(this.containerId);
    if (obs) this.observe(obs);
  }

  /**
   * Before stopping a running, networked task: keep it serving for drainMs()
   * while load balancers elsewhere let go of it. False when the runner was
   * closed meanwhile (then nothing is stopped).
   */
  private async drain(): Promise<boolean> {
    if (this.drained) return true;
    this.drained = true;
    const ms = this.state === 'running' && !this.exited && this.containerId ? drainMs(this.task) : 0;
    if (ms > 0) {
      log.debug({ task: this.id, ms }, 'draining before stop');
      await new Promise((r) => setTimeout(r, ms));
    }
    return !this.closed;
  }

  private async removeContainer(): Promise<void> {
    if (!this.containerId) return;
    await this.stopContainer();
    await this.deps.hooks.beforeRemove?.(this.task);
    await this.deps.exec.remove(this.containerId);
    this.containerId = undefined;
  }

  /** One step; true when something changed and the loop should step again. */
  private async step(): Promise<boolean> {
    if (this.retiring) {
      try {
        if (!this.synced) {
          const obs = await this.deps.exec.inspect(this.containerId ?? containerName(this.task, this.deps.context(this.task).serviceName));
          this.containerId = obs && obs.taskId === this.id ? obs.id : undefined;
        }
        await this.removeContainer();
      } catch (err) {
        log.warn({ task: this.id, err: dockerMessage(err) }, 'removing task container failed');
      }
      this.closed = true;
      for (const r of this.retiredWaiters.splice(0)) r();
      return false;
    }
    if (!this.synced) { await this.sync(); return true; }

    const desired = this.task.DesiredState;
    if (rank(desired) >= rank('shutdown')) {
      if (rank(this.state) < rank('complete')) {
        if (!(await this.drain())) return false;
        try { await this.stopContainer(); } catch (err) { return this.fatal(dockerMessage(err)); }
        return this.transition('shutdown', 'shutdown');
      }
      if (desired === 'remove' && this.containerId) {
        try { await this.removeContainer(); } catch (err) { log.warn({ task: this.id, err: dockerMessage(err) }, 'remove failed'); }
      }
      return false;
    }
    if (rank(this.state) > rank(desired)) return false;

    // the following states may proceed past desired state
    switch (this.state) {
      case 'preparing': return this.prepare();
      case 'starting': return this.start();
      case 'running': return this.wait();
      default: break;
    }
    if (rank(this.state) >= rank(desired)) return false;
    switch (this.state) {
      case 'new': case 'pending': case 'assigned': return this.transition('accepted', 'accepted');
      case 'accepted': return this.transition('preparing', 'preparing');
      case 'ready': return this.transition('starting', 'starting');
      default: return false; // terminal
    }
  }

  private async prepare(): Promise<boolean> {
    try {
      await this.deps.limiter.run(async () => {
        const ctx = this.deps.context(this.task);
        await this.deps.exec.ensureImage(this.task.Spec.ContainerSpec.Image);
        await this.deps.exec.ensureVolumes(this.task);
        const opts = containerCreateOptions(this.task, ctx);
        await this.deps.hooks.beforeCreate?.(this.task, opts);
        this.containerId = await this.deps.exec.create(opts);
      });
    } catch (err) {
      return this.fatal(dockerMessage(err));
    }
    return this.transition('ready', 'prepared');
  }

  private async start(): Promise<boolean> {
    if (!this.started) {
      try {
        await this.deps.limiter.run(async () => {
          if (!this.containerId) throw new Error('task: container not found');
          const obs = await this.deps.exec.start(this.containerId);
          this.observe(obs);
          this.started = true;
          if (obs.running) await this.deps.hooks.afterStart?.(this.task, { id: obs.id, pid: obs.pid });
        });
      } catch (err) {
        if (this.started) {
          try { await this.stopContainer(); } catch { /* reported below */ }
          return this.fatal(`task: network attach failed: ${dockerMessage(err)}`);
        }
        return this.fatal(dockerMessage(err));
      }
      if (this.health === undefined && this.declaresHealthCheck()) this.health = 'starting';
    }
    // with a health check, stay in `starting` until healthy
    if (this.health !== undefined && !this.exited) {
      if (this.health === 'healthy') return this.transition('running', 'started');
      if (this.health === 'unhealthy') return this.failUnhealthy();
      return false;
    }
    if (this.exited && this.exitCode !== 0) return this.fatal(`task: non-zero exit (${this.exitCode ?? -1})`);
    return this.transition('running', 'started');
  }

  private declaresHealthCheck(): boolean {
    const test = this.task.Spec.ContainerSpec.HealthCheck?.Test;
    return !!test?.length && test[0] !== 'NONE';
  }

  /** reports the failure first, so DNS, VIPs and the mesh drop the task at once, then stops the container */
  private async failUnhealthy(): Promise<boolean> {
    const changed = this.fatal('task: unhealthy container');
    try { await this.stopContainer(); } catch (err) { log.warn({ task: this.id, err: dockerMessage(err) }, 'stopping unhealthy container failed'); }
    return changed;
  }

  private async wait(): Promise<boolean> {
    if (this.exited) {
      if (this.exitCode === undefined && this.containerId) {
        const obs = await this.deps.exec.inspect(this.containerId);
        if (obs) this.observe(obs);
      }
      if ((this.exitCode ?? -1) === 0) return this.transition('complete', 'finished');
      return this.fatal(`task: non-zero exit (${this.exitCode ?? -1})`);
    }
    if (this.health === 'unhealthy') return this.failUnhealthy();
    return false;
  }
}
