// Owns the manager's management port (2377): HTTPS with client certificates.
// Unauthenticated: the CA (for pinning) and join. Authenticated by the node
// certificate: the session stream (assignments down, NDJSON), task status
// reports and heartbeats — served by the leader only: any other manager
// answers 503 naming the leader ({ message, leader: host:port }), and the
// leader drops every session when it is deposed. Bad input is answered with
// an error, never a crash.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ShoalError, errorMessage, httpStatus } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { PATHS, type JoinRequest, type SessionMessage, type SessionOpen, type StatusReport } from '../../common/protocol.js';
import { peerIdentity, type NodeCert, type RootCA } from '../ca/ca.js';
import { logBroker } from '../logs/broker.js';
import { filesFor, openConfig, openSecret } from '../secrets/deliver.js';
import { addFileResolver, removeTaskFiles } from '../../worker/secrets.js';
import { TASK_STATES } from '../../common/types.js';
import type { Store } from '../store/types.js';
import type { LeaderWork } from '../ha/leader-work.js';
import { admit, type ManagerAdmission } from './join.js';
import type { NetMapPublisher } from './netmap.js';

const log = logger('cluster-server');
const MAX_BODY = 4 << 20;

export interface ClusterServerDeps {
  store: Store;
  ca: RootCA;
  cert: NodeCert;
  netmaps: NetMapPublisher;
  /** the leader's running pipeline; undefined on a manager that is not the leader */
  work: () => LeaderWork | undefined;
  /** the leader's management address, for 503 answers */
  leaderAddr: () => string | undefined;
  heartbeatPeriodMs: () => number;
  /** how managers are admitted (etcd); undefined: this swarm cannot add managers */
  managers?: ManagerAdmission;
}

export const NOT_LEADER = 'this manager is not the leader';

function readJson<T>(req: IncomingMessage): Promise<T> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new ShoalError('invalid', 'request body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as T); } catch { reject(new ShoalError('invalid', 'malformed JSON')); }
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) { res.destroy(); return; }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export class ClusterServer {
  private server: Server;
  private sessions = new Set<ServerResponse>();
  private unhook: (() => void)[] = [];

  constructor(private deps: ClusterServerDeps) {
    this.server = createServer({ key: deps.cert.keyPem, cert: deps.cert.certPem, ca: deps.ca.certPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      this.handle(req, res).catch((err) => {
        if (!(err instanceof ShoalError)) log.error({ err }, 'cluster request failed');
        send(res, httpStatus(err), { message: errorMessage(err) });
      });
    });
    // this process's own worker opens its tasks' secrets and configs straight from the store
    this.unhook.push(addFileResolver((kind, id) => (kind === 'secrets' ? openSecret(deps.store, id) : openConfig(deps.store, id))));
    // task files on this host go once their task has ended for good
    this.unhook.push(deps.store.watch((changes) => {
      for (const c of changes) {
        if (c.kind !== 'tasks') continue;
        const t = c.object as import('../../common/types.js').Task;
        const ended = TASK_STATES.indexOf(t.Status?.State) >= TASK_STATES.indexOf('complete') && TASK_STATES.indexOf(t.DesiredState) > TASK_STATES.indexOf('running');
        if (c.action === 'remove' || ended) removeTaskFiles(t.NodeID ?? '', t.ID);
      }
    }));
    this.server.on('tlsClientError', () => undefined);
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  /** ends every worker session (this manager stopped leading) */
  dropSessions(reason: string): void {
    if (this.sessions.size) log.info({ sessions: this.sessions.size, reason }, 'dropping worker sessions');
    for (const s of this.sessions) s.destroy();
  }

  /** the leader's pipeline, or a 503 naming the leader */
  private leading(res: ServerResponse): LeaderWork | undefined {
    const work = this.deps.work();
    if (!work) send(res, 503, { message: NOT_LEADER, leader: this.deps.leaderAddr() ?? '' });
    return work;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const u of this.unhook.splice(0)) u();
    for (const s of this.sessions) s.destroy();
    this.server.closeAllConnections?.();
    await new Promise((r) => this.server.close(() => r(undefined)));
  }

  private peer(req: IncomingMessage) {
    const sock = req.socket as TLSSocket;
    if (!sock.authorized) throw new ShoalError('forbidden', 'a node certificate signed by this swarm\'s CA is required');
    const id = peerIdentity(sock.getPeerCertificate()?.subject as { CN?: string; OU?: string });
    if (!id) throw new ShoalError('forbidden', 'certificate does not name a swarm node');
    const node = this.deps.store.get('nodes', id.nodeId);
    if (!node) throw new ShoalError('forbidden', `node ${id.nodeId} has been removed from the swarm`);
    return id;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === PATHS.ca) {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' });
      res.end(this.deps.ca.certPem);
      return;
    }
    if (req.method === 'POST' && path === PATHS.join) {
      const body = await readJson<JoinRequest>(req);
      const out = await admit(this.deps.store, this.deps.ca, body, this.deps.managers, this.deps.heartbeatPeriodMs());
      log.info({ nodeId: out.nodeId, role: out.role, hostname: body.hostname }, 'node joined');
      send(res, 200, out);
      return;
    }
    if (req.method === 'POST' && path === PATHS.heartbeat) {
      const { nodeId } = this.peer(req);
      req.resume();
      const work = this.leading(res);
      if (!work) return;
      work.liveness.beat(nodeId);
      send(res, 200, { heartbeatPeriodMs: this.deps.heartbeatPeriodMs() });
      return;
    }
    if (req.method === 'POST' && path === PATHS.status) {
      const { nodeId } = this.peer(req);
      const body = await readJson<StatusReport>(req);
      if (!Array.isArray(body.updates)) throw new ShoalError('invalid', 'updates must be a list');
      const work = this.leading(res);
      if (!work) return;
      work.liveness.beat(nodeId);
      await work.dispatcher.updateStatus(nodeId, body.updates.filter((u) => u && typeof u.taskId === 'string' && u.status && typeof u.status.State === 'string'));
      send(res, 200, {});
      return;
    }
    if (req.method === 'POST' && path === PATHS.logs) {
      const { nodeId } = this.peer(req);
      const id = new URL(req.url ?? '/', 'https://manager').searchParams.get('id') ?? '';
      logBroker(this.deps.store).accept(nodeId, id, req, res);
      return;
    }
    if (req.method === 'POST' && path === PATHS.session) {
      const { nodeId } = this.peer(req);
      const open = await readJson<SessionOpen>(req);
      if (!open.description) throw new ShoalError('invalid', 'session needs the node description');
      const work = this.leading(res);
      if (!work) return;
      await this.session(work, nodeId, open, req, res);
      return;
    }
    throw new ShoalError('not-found', `no route ${req.method} ${path}`);
  }

  private async session(work: LeaderWork, nodeId: string, open: SessionOpen, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const addr = open.addr || (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    await work.dispatcher.register(nodeId, open.description, addr);
    if (!work.running) throw new ShoalError('unavailable', NOT_LEADER);
    work.liveness.beat(nodeId);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    req.socket.setKeepAlive(true, 1000);
    req.socket.setNoDelay(true);
    this.sessions.add(res);
    const write = (m: SessionMessage) => { if (!res.destroyed) res.write(JSON.stringify(m) + '\n'); };
    const managers = this.deps.store.list('nodes', (n) => !!n.ManagerStatus).map((n) => ({ nodeId: n.ID, addr: n.ManagerStatus!.Addr }));
    write({ type: 'hello', nodeId, heartbeatPeriodMs: this.deps.heartbeatPeriodMs(), managers, leader: this.deps.leaderAddr() });
    const unsubscribe = work.dispatcher.subscribe(nodeId, (tasks) => {
      // the secrets and configs these tasks use, and nothing else, go first
      try {
        write({ type: 'files', files: filesFor(this.deps.store, tasks) });
      } catch (err) {
        log.warn({ nodeId, err: errorMessage(err) }, 'could not open secrets for a node');
      }
      write({ type: 'assignments', tasks });
    });
    const unsubscribeMap = open.netmap === false ? () => undefined : this.deps.netmaps.subscribe(nodeId, (map) => write({ type: 'netmap', map }));
    const detachLogs = logBroker(this.deps.store).attach(nodeId, write);
    const ping = setInterval(() => write({ type: 'ping' }), Math.max(500, this.deps.heartbeatPeriodMs()));
    const done = () => {
      clearInterval(ping);
      unsubscribe();
      unsubscribeMap();
      detachLogs();
      this.sessions.delete(res);
    };
    res.on('close', done);
    req.on('error', done);
    log.info({ nodeId, addr }, 'session opened');
  }
}
