// Owns the manager's side of log streaming from workers: it asks a node over
// its session stream to upload a task's logs, matches the node's upload
// (POST PATHS.logs?id=…, authenticated by the node certificate) to the
// waiting API request, and tears both down when either side goes away.
// One broker per store (the API server and the management port meet here).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { newId } from '../../common/ids.js';
import { ShoalError, unavailable } from '../../common/errors.js';
import type { LogsRequest, SessionMessage } from '../../common/protocol.js';

export interface LogSink {
  /** the upload started; `tty`: raw text rather than stdcopy frames */
  open(tty: boolean): void;
  data(chunk: Buffer): void;
  end(err?: string): void;
}

interface Pending { nodeId: string; sink: LogSink; upload?: { req: IncomingMessage; res: ServerResponse }; done: boolean }

export class LogBroker {
  private sessions = new Map<string, (m: SessionMessage) => void>();
  private pending = new Map<string, Pending>();

  /** a session to `nodeId` is open; returns its detach function */
  attach(nodeId: string, send: (m: SessionMessage) => void): () => void {
    this.sessions.set(nodeId, send);
    return () => {
      if (this.sessions.get(nodeId) !== send) return;
      this.sessions.delete(nodeId);
      for (const [id, p] of this.pending) if (p.nodeId === nodeId && !p.upload) this.finish(id, 'node session closed');
    };
  }

  hasSession(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  /** sends a message down a node's session; false when the node has none on this manager */
  send(nodeId: string, m: SessionMessage): boolean {
    const send = this.sessions.get(nodeId);
    send?.(m);
    return !!send;
  }

  /** asks `nodeId` for a task's logs; the returned function cancels */
  open(nodeId: string, r: Omit<LogsRequest, 'id'>, sink: LogSink): () => void {
    const send = this.sessions.get(nodeId);
    if (!send) throw unavailable(`node ${nodeId} is not connected`);
    const id = newId();
    this.pending.set(id, { nodeId, sink, done: false });
    send({ type: 'logs', request: { ...r, id } });
    return () => {
      const p = this.pending.get(id);
      if (!p) return;
      if (!p.upload) this.sessions.get(nodeId)?.({ type: 'logs-cancel', id });
      this.finish(id);
    };
  }

  /** a node's upload arrived on the management port */
  accept(nodeId: string, id: string, req: IncomingMessage, res: ServerResponse): void {
    const p = this.pending.get(id);
    if (!p || p.nodeId !== nodeId || p.upload) throw new ShoalError('not-found', `no log request ${id} for this node`);
    p.upload = { req, res };
    const err = req.headers['x-shoal-log-error'];
    if (typeof err === 'string') {
      req.resume();
      res.writeHead(200, { 'content-length': 0 }).end();
      this.finish(id, decodeURIComponent(err));
      return;
    }
    p.sink.open(req.headers['x-shoal-log-tty'] === '1');
    req.on('data', (c: Buffer) => { if (!p.done) p.sink.data(c); });
    req.on('end', () => {
      if (!res.headersSent) res.writeHead(200, { 'content-length': 0 }).end();
      this.finish(id);
    });
    req.on('close', () => this.finish(id, req.complete ? undefined : 'log upload interrupted'));
  }

  private finish(id: string, err?: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.done = true;
    if (p.upload && !p.upload.req.complete) {
      p.upload.res.destroy();
      p.upload.req.destroy();
    }
    p.sink.end(err);
  }

  /** requests in flight (tests and metrics) */
  get inFlight(): number {
    return this.pending.size;
  }
}

const brokers = new WeakMap<object, LogBroker>();

/** the broker shared by everything that holds this store */
export function logBroker(store: object): LogBroker {
  let b = brokers.get(store);
  if (!b) { b = new LogBroker(); brokers.set(store, b); }
  return b;
}
