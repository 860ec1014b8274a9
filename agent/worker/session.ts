// Owns a worker's session with the managers: one NDJSON stream of assignment
// sets, heartbeats every period, and task status reports that are retried
// until a manager takes them. When no manager answers, the node keeps
// running what it last had and reconnects with backoff, trying each manager.
// Only the leader serves sessions: another manager answers 503 naming the
// leader, and the session goes there next without backing off.
import { request, type Agent } from 'node:https';
import { logger } from '../common/log.js';
import { PATHS, type SessionMessage, type SessionOpen } from '../common/protocol.js';
import type { NetMap } from '../common/netmap.js';
import type { NodeDescription, Task, TaskStatus } from '../common/types.js';
import Docker from 'dockerode';
import { call, RemoteError, splitAddr, tlsAgent, type NodeTls } from './cluster-client.js';
import { LogUploader } from './logs.js';
import { setDeliveredFiles, sweepTaskFiles } from './secrets.js';

const log = logger('session');

/** a manager that is not the leader refused the session; `leader` is its hint (host:port) or '' */
class NotLeader extends RemoteError {
  constructor(message: string, readonly leader: string) { super(503, message); }
}

export interface SessionOptions {
  managers: string[];             // host:port of managers, tried in turn
  tls: Required<NodeTls>;
  addr: string;                   // this node's advertised address
  describe: () => Promise<NodeDescription>;
  onAssignments: (tasks: Task[]) => void;
  onNetMap?: (map: NetMap) => void;
  /** the leader promotes this node to manager */
  onPromote?: (m: Extract<SessionMessage, { type: 'promote' }>) => void;
  /** dockerd that runs this node's tasks (log uploads); default: DOCKER_HOST or /var/run/docker.sock */
  docker?: Docker;
  onManagers?: (addrs: string[]) => void;
  /** the manager says this node no longer belongs to the swarm */
  onRemoved?: (reason: string) => void;
}

export class ManagerSession {
  private agent: Agent;
  private managers: string[];
  private next = 0;
  private periodMs = 1000;
  private stopped = false;
  private pending = new Map<string, TaskStatus>();
  private sending = false;
  private heartbeatTimer?: NodeJS.Timeout;
  private current?: { destroy(): void };
  private connected = false;
  private logs: LogUploader;
  private nodeId?: string;
  private failedAt = new Map<string, number>();

  constructor(private opts: SessionOptions) {
    this.agent = tlsAgent(opts.tls);
    this.managers = [...opts.managers];
    // uploads are long-lived: their own agent, so they never hold up heartbeats and status reports
    const logAgent = tlsAgent(opts.tls);
    logAgent.maxSockets = Infinity;
    this.logs = new LogUploader(opts.docker ?? new Docker(), logAgent);
  }

  get isConnected(): boolean { return this.connected; }

  start(): void {
    void this.loop();
    this.scheduleHeartbeat();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.heartbeatTimer);
    this.current?.destroy();
    this.logs.close();
    this.agent.destroy();
  }

  report(updates: { taskId: string; status: TaskStatus }[]): void {
    for (const u of updates) this.pending.set(u.taskId, u.status);
    void this.flush();
  }

  private manager(): string {
    return this.managers[this.next % this.managers.length];
  }

  /** the next attempt goes to `addr` (the advertised leader) */
  private prefer(addr: string): void {
    if (!addr) return;
    if (!this.managers.includes(addr)) this.managers.push(addr);
    this.next = this.managers.indexOf(addr);
  }

  private async loop(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      const addr = this.manager();
      try {
        await this.stream(addr, () => { backoff = 100; });
      } catch (err) {
        // a hint naming a manager that just failed is stale (its election key outlives it by a lease TTL)
        const recentlyFailed = err instanceof NotLeader && Date.now() - (this.failedAt.get(err.leader) ?? 0) < 3_000;
        if (err instanceof NotLeader && err.leader && err.leader !== addr && !recentlyFailed) {
          this.connected = false;
          this.prefer(err.leader);
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        if (err instanceof RemoteError && err.status === 403) {
          log.warn({ err: err.message }, 'manager refused this node');
          this.opts.onRemoved?.(err.message);
        } else if (!this.stopped) log.info({ manager: addr, err: (err as Error).message }, 'session lost; reconnecting');
        if (!(err instanceof RemoteError)) this.failedAt.set(addr, Date.now());
      }
      this.connected = false;
      if (this.stopped) return;
      this.next++;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  /** one session: resolves when the stream ends, rejects on errors */
  private async stream(addr: string, onOpen: () => void): Promise<void> {
    const open: SessionOpen = { description: await this.opts.describe(), addr: this.opts.addr, netmap: !!this.opts.onNetMap };
    const body = JSON.stringify(open);
    const [host, port] = splitAddr(addr);
    await new Promise<void>((resolve, reject) => {
      const req = request({ host, port, method: 'POST', path: PATHS.session, agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (c) => { text += c; });
          res.on('end', () => {
            let msg = text;
            let leader: string | undefined;
            try { ({ message: msg, leader } = JSON.parse(text) as { message: string; leader?: string }); } catch { /* text */ }
            reject(res.statusCode === 503 && leader !== undefined ? new NotLeader(msg, leader) : new RemoteError(res.statusCode ?? 500, msg));
          });
          return;
        }
        this.connected = true;
        onOpen();
        void this.flush();
        let buf = '';
        let idle: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(idle);
          // the manager pings every period: silence for 3 periods means it is gone
          idle = setTimeout(() => req.destroy(new Error('manager silent')), this.periodMs * 3 + 500);
        };
        arm();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          arm();
          buf += chunk;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line) this.onMessage(JSON.parse(line) as SessionMessage);
          }
        });
        res.on('end', () => { clearTimeout(idle); resolve(); });
        res.on('error', (e) => { clearTimeout(idle); reject(e); });
        res.on('close', () => { clearTimeout(idle); resolve(); });
      });
      this.current = req;
      req.setTimeout(10_000, () => { if (!this.connected) req.destroy(new Error('session open timed out')); });
      req.on('error', reject);
      req.end(body);
    });
  }

  private onMessage(m: SessionMessage): void {
    if (m.type === 'hello') {
      this.nodeId = m.nodeId;
      this.periodMs = m.heartbeatPeriodMs || this.periodMs;
      const addrs = m.managers.map((x) => x.addr);
      if (addrs.length) {
        // the leader (this manager) first: that is where a lost session tries again
        this.managers = [...new Set([this.manager(), ...(m.leader ? [m.leader] : []), ...addrs])];
        this.next = 0;
        this.opts.onManagers?.(this.managers);
      }
    } else if (m.type === 'files') {
      setDeliveredFiles(m.files);
    } else if (m.type === 'assignments') {
      this.opts.onAssignments(m.tasks);
      if (this.nodeId) sweepTaskFiles(this.nodeId, new Set(m.tasks.map((t) => t.ID)));
    } else if (m.type === 'netmap') {
      this.opts.onNetMap?.(m.map);
    } else if (m.type === 'promote') {
      this.opts.onPromote?.(m);
    } else if (m.type === 'logs') {
      void this.logs.upload(this.manager(), m.request);
    } else if (m.type === 'logs-cancel') {
      this.logs.cancel(m.id);
    }
  }

  private scheduleHeartbeat(): void {
    if (this.stopped) return;
    this.heartbeatTimer = setTimeout(async () => {
      if (this.connected) {
        try {
          const r = await call<{ heartbeatPeriodMs: number }>(this.agent, this.manager(), 'POST', PATHS.heartbeat, {}, this.periodMs * 2);
          this.periodMs = r.heartbeatPeriodMs || this.periodMs;
        } catch (err) {
          log.debug({ err: (err as Error).message }, 'heartbeat failed');
          if (err instanceof RemoteError && err.status === 403) this.opts.onRemoved?.(err.message);
          // no longer the leader: the session goes to the one that is
          if (err instanceof RemoteError && err.status === 503) this.current?.destroy();
        }
      }
      this.scheduleHeartbeat();
    }, this.periodMs);
    this.heartbeatTimer.unref?.();
  }

  private async flush(): Promise<void> {
    if (this.sending || !this.pending.size || !this.connected || this.stopped) return;
    this.sending = true;
    const batch = [...this.pending].map(([taskId, status]) => ({ taskId, status }));
    this.pending.clear();
    try {
      await call(this.agent, this.manager(), 'POST', PATHS.status, { updates: batch });
    } catch (err) {
      // keep them for the next manager/session, unless newer ones came in
      for (const u of batch) if (!this.pending.has(u.taskId)) this.pending.set(u.taskId, u.status);
      log.debug({ err: (err as Error).message }, 'status report failed; will retry');
      setTimeout(() => void this.flush(), 500).unref?.();
    } finally {
      this.sending = false;
    }
    if (this.pending.size) void this.flush();
  }
}
