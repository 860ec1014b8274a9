// Owns a node's side of `service logs` / `task logs`: it opens a task
// container's log stream on dockerd (multiplexed, with timestamps) and, when
// a manager asks over the session, uploads it to the manager as one chunked
// HTTPS POST authenticated by the node certificate. Closing either end stops
// the other: the manager hangs up when its API client goes away.
import { request, type Agent } from 'node:https';
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { logger } from '../common/log.js';
import { PATHS, type LogsRequest } from '../common/protocol.js';
import { splitAddr } from './cluster-client.js';

const log = logger('worker-logs');
const LABEL_TASK_ID = 'com.docker.swarm.task.id';

export interface ContainerLogs {
  stream: Readable;
  /** the container has a TTY: the stream is raw text, not stdcopy frames */
  tty: boolean;
}

export interface LogOptions { follow: boolean; tail: string; since: string }

/** the task's container log stream (timestamps on), or undefined when the task has no container here */
export async function openTaskLogs(docker: Docker, taskId: string, o: LogOptions): Promise<ContainerLogs | undefined> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_TASK_ID}=${taskId}`] } });
  const found = list[0];
  if (!found) return undefined;
  const c = docker.getContainer(found.Id);
  const info = await c.inspect();
  const tail = o.tail && o.tail !== 'all' && /^\d+$/.test(o.tail) ? Number(o.tail) : undefined;
  const common = { stdout: true, stderr: true, timestamps: true, ...(tail !== undefined ? { tail } : {}), ...(o.since ? { since: o.since } : {}) };
  if (o.follow) {
    const s = await c.logs({ ...common, follow: true }) as unknown as Readable;
    return { stream: s, tty: !!info.Config.Tty };
  }
  const buf = await c.logs({ ...common, follow: false }) as unknown as Buffer;
  const p = new PassThrough();
  p.end(buf);
  return { stream: p, tty: !!info.Config.Tty };
}

/** runs the uploads one node does on request; cancel() ends one, close() all */
export class LogUploader {
  private active = new Map<string, { destroy(): void }>();
  private cancelled = new Set<string>();

  constructor(private readonly docker: Docker, private readonly agent: Agent) {}

  cancel(id: string): void {
    const a = this.active.get(id);
    if (a) a.destroy();
    else this.cancelled.add(id);
  }

  close(): void {
    for (const a of this.active.values()) a.destroy();
    this.active.clear();
  }

  /** opens the container's logs and POSTs them to `manager` until they end or either side hangs up */
  async upload(manager: string, r: LogsRequest): Promise<void> {
    let logs: ContainerLogs | undefined;
    let error = '';
    try {
      logs = await openTaskLogs(this.docker, r.taskId, r);
      if (!logs) error = `task ${r.taskId} has no container on this node`;
    } catch (err) {
      error = (err as Error).message;
    }
    if (this.cancelled.delete(r.id)) { logs?.stream.destroy(); return; }
    const [host, port] = splitAddr(manager);
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'x-shoal-log-tty': logs?.tty ? '1' : '0' };
    if (error) { headers['x-shoal-log-error'] = encodeURIComponent(error); headers['content-length'] = 0; }
    const req = request({ host, port, method: 'POST', path: `${PATHS.logs}?id=${encodeURIComponent(r.id)}`, agent: this.agent, headers });
    const stop = () => { logs?.stream.destroy(); req.destroy(); this.active.delete(r.id); };
    this.active.set(r.id, { destroy: stop });
    req.on('response', (res) => { res.resume(); res.on('end', stop); });
    req.on('error', (err) => { log.debug({ id: r.id, err: err.message }, 'log upload ended'); stop(); });
    req.on('close', stop);
    if (!logs) { req.end(); return; }
    logs.stream.on('error', () => req.end());
    logs.stream.on('end', () => req.end());
    logs.stream.on('close', () => { if (!req.writableEnded) req.end(); });
    logs.stream.pipe(req, { end: false });
  }
}
