// Owns every call the worker makes to dockerd (through dockerode): image
// presence (a failed pull is fine when the image exists locally), named
// volumes, create/start/inspect/stop/kill/remove of task containers, listing
// this node's containers, and one events stream per worker (filtered by the
// node-id label, reconnecting with backoff). Every step is idempotent:
// "already exists", "already started", "already stopped", "no such container"
// count as success where they mean the desired end state holds.
import type Dockerode from 'dockerode';
import { LABEL_NODE_ID, LABEL_TASK_ID, namedVolumes } from './container.js';
import { logger } from '../../common/log.js';
import type { Task } from '../../common/types.js';

const log = logger('worker/executor');

export type Health = 'starting' | 'healthy' | 'unhealthy';

/** What dockerd says about one task container. */
export interface ContainerObservation {
  id: string;
  name: string;
  taskId?: string;
  /** dockerd's State.Status: created, running, paused, restarting, removing, exited, dead */
  status: string;
  running: boolean;
  pid: number;
  exitCode: number;
  /** present only when the container has an active health check */
  health?: Health;
}

/** A container event from dockerd's /events stream, reduced to what the worker needs. */
export interface ContainerEvent {
  id: string;
  taskId?: string;
  /** die, start, destroy, oom, kill, health_status: healthy, … */
  action: string;
  exitCode?: number;
  health?: Health;
  /** nanoseconds since the epoch, as dockerd stamps it */
  timeNano: number;
}

export interface EventWatch { close(): void }

/** An error from dockerd in Docker's own words (used as the task's Err). */
export class ExecutorError extends Error {
  constructor(message: string, readonly statusCode?: number) {
    super(message);
    this.name = 'ExecutorError';
  }
}

interface DockerodeError { statusCode?: number; json?: { message?: string } | string | null; reason?: string; message?: string }

export function dockerMessage(err: unknown): string {
  const e = err as DockerodeError;
  if (e && typeof e.json === 'object' && e.json?.message) return e.json.message;
  if (e && typeof e.json === 'string' && e.json) {
    try { return (JSON.parse(e.json) as { message?: string }).message ?? e.json; } catch { return e.json; }
  }
  return e?.message ?? String(err);
}

function statusOf(err: unknown): number | undefined {
  return (err as DockerodeError)?.statusCode;
}

export interface DockerExecutorOptions {
  nodeId: string;
  /** bound on one pull attempt; default 30 s */
  pullTimeoutMs?: number;
}

export class DockerExecutor {
  private readonly pulls = new Map<string, Promise<void>>();
  private readonly pullTimeoutMs: number;

  constructor(readonly docker: Dockerode, private readonly opts: DockerExecutorOptions) {
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 30_000;
  }

  /** Succeeds when the image is present locally (after a pull attempt if it was not). */
  async ensureImage(image: string): Promise<void> {
    if (await this.imagePresent(image)) return;
    let inflight = this.pulls.get(image);
    if (!inflight) {
      inflight = this.pull(image).finally(() => this.pulls.delete(image));
      this.pulls.set(image, inflight);
    }
    try {
      await inflight;
    } catch (err) {
      log.debug({ image, err: dockerMessage(err) }, 'pull failed');
    }
    if (!(await this.imagePresent(image))) throw new ExecutorError(`No such image: ${image}`, 404);
  }

  private async imagePresent(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw new ExecutorError(dockerMessage(err), statusOf(err));
    }
  }

  private async pull(image: string): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.pullTimeoutMs);
    try {
      const stream = await this.docker.pull(image, { abortSignal: ac.signal });
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
          const inStream = out?.find((o) => o.error);
          if (err) reject(err);
          else if (inStream) reject(new Error(inStream.error));
          else resolve();
        });
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Creates the task's named volumes that do not exist yet, with their labels and driver options. */
  async ensureVolumes(task: Task): Promise<void> {
    for (const v of namedVolumes(task)) {
      try {
        await this.docker.getVolume(v.Name).inspect();
        continue;
      } catch (err) {
        if (statusOf(err) !== 404) throw new ExecutorError(dockerMessage(err), statusOf(err));
      }
      try {
        await this.docker.createVolume(v);
      } catch (err) {
        // a parallel task may have created it meanwhile: fine when it now exists
        try { await this.docker.getVolume(v.Name).inspect(); } catch { throw new ExecutorError(dockerMessage(err), statusOf(err)); }
      }
    }
  }

  /**
   * Creates the container; when one of that name already exists for the same
   * task (an earlier attempt), returns its id instead.
   */
  async create(options: Dockerode.ContainerCreateOptions): Promise<string> {
    try {
      const c = await this.docker.createContainer(options);
      return c.id;
    } catch (err) {
      if (statusOf(err) === 409 && options.name) {
        const existing = await this.inspect(options.name);
        if (existing && existing.taskId === options.Labels?.[LABEL_TASK_ID]) return existing.id;
      }
      throw new ExecutorError(dockerMessage(err), statusOf(err));
    }
  }

  /** Starts the container ("already started" is success) and returns its state right after. */
  async start(id: string): Promise<ContainerObservation> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (statusOf(err) !== 304) throw new ExecutorError(dockerMessage(err), statusOf(err));
    }
    const obs = await this.inspect(id);
    if (!obs) throw new ExecutorError(`No such container: ${id}`, 404);
    return obs;
  }

  /** The container's state, or undefined when it does not exist. */
  async inspect(idOrName: string): Promise<ContainerObservation | undefined> {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(idOrName).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new ExecutorError(dockerMessage(err), statusOf(err));
    }
    const obs: ContainerObservation = {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      taskId: info.Config.Labels?.[LABEL_TASK_ID],
      status: info.State.Status,
      running: info.State.Running,
      pid: info.State.Pid,
      exitCode: info.State.ExitCode,
    };
    const h = info.State.Health?.Status;
    if (h === 'starting' || h === 'healthy' || h === 'unhealthy') obs.health = h;
    return obs;
  }

  /** Stops with the grace period (dockerd sends StopSignal, then SIGKILL after graceSeconds). */
  async stop(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: graceSeconds });
      return;
    } catch (err) {
      const code = statusOf(err);
      if (code === 304 || code === 404) return;
      log.warn({ id, err: dockerMessage(err) }, 'stop failed; killing');
    }
    try {
      await this.docker.getContainer(id).kill();
    } catch (err) {
      const code = statusOf(err);
      if (code === 404 || code === 409) return; // gone or not running
      throw new ExecutorError(dockerMessage(err), code);
    }
  }

  /** Removes the container and its anonymous volumes; "no such container" is success. */
  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      const code = statusOf(err);
      if (code === 404) return;
      // 409 "removal already in progress" ends the same way
      if (code === 409 && /already in progress/i.test(dockerMessage(err))) return;
      throw new ExecutorError(dockerMessage(err), code);
    }
  }

  /** Every container labelled with this node's id, running or not. */
  async list(): Promise<{ id: string; name: string; taskId?: string; state: string }[]> {
    const all = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE_ID}=${this.opts.nodeId}`] } });
    return all.map((c) => ({ id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), taskId: c.Labels?.[LABEL_TASK_ID], state: c.State }));
  }

  /**
   * One events stream for this node's containers. `onConnect` runs after every
   * (re)connection so the caller can resynchronise what it may have missed.
   */
  watch(handlers: { onEvent(e: ContainerEvent): void; onConnect(): void }): EventWatch {
    let closed = false;
    let current: NodeJS.ReadableStream | undefined;
    let backoff = 100;
    let timer: NodeJS.Timeout | undefined;
    let lastNano = 0;

    const reconnect = () => {
      current = undefined;
      if (closed || timer) return;
      timer = setTimeout(() => { timer = undefined; void connect(); }, backoff);
      backoff = Math.min(backoff * 2, 5_000);
    };

    const connect = async () => {
      if (closed) return;
      try {
        const opts: Dockerode.GetEventsOptions = {
          filters: { type: ['container'], label: [`${LABEL_NODE_ID}=${this.opts.nodeId}`] },
        };
        // replay what happened while disconnected
        if (lastNano) opts.since = Math.floor(lastNano / 1e9);
        const stream = await this.docker.getEvents(opts);
        if (closed) { (stream as unknown as { destroy(): void }).destroy(); return; }
        current = stream;
        backoff = 100;
        let buf = '';
        stream.on('data', (chunk: Buffer) => {
          buf += chunk.toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const e = parseEvent(line);
            if (!e) continue;
            lastNano = Math.max(lastNano, e.timeNano);
            try { handlers.onEvent(e); } catch (err) { log.error({ err }, 'event handler failed'); }
          }
        });
        const gone = () => { if (current === stream) reconnect(); };
        stream.on('error', gone);
        stream.on('end', gone);
        stream.on('close', gone);
        handlers.onConnect();
      } catch (err) {
        log.warn({ err: dockerMessage(err) }, 'events stream failed; retrying');
        reconnect();
      }
    };

    void connect();
    return {
      close() {
        closed = true;
        if (timer) clearTimeout(timer);
        const s = current as unknown as { destroy?(): void } | undefined;
        s?.destroy?.();
      },
    };
  }
}

function parseEvent(line: string): ContainerEvent | undefined {
  let raw: { Type?: string; Action?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; timeNano?: number; time?: number };
  try { raw = JSON.parse(line); } catch { return undefined; }
  if (raw.Type && raw.Type !== 'container') return undefined;
  const id = raw.Actor?.ID ?? raw.id;
  const action = raw.Action ?? '';
  if (!id || !action) return undefined;
  const attrs = raw.Actor?.Attributes ?? {};
  const e: ContainerEvent = { id, action, taskId: attrs[LABEL_TASK_ID], timeNano: raw.timeNano ?? (raw.time ?? 0) * 1e9 };
  if (action === 'die' && attrs.exitCode !== undefined) e.exitCode = Number(attrs.exitCode);
  const m = /^health_status:\s*(\w+)/.exec(action);
  if (m && (m[1] === 'starting' || m[1] === 'healthy' || m[1] === 'unhealthy')) e.health = m[1];
  return e;
}
