// Owns HTTP mode: per-request round robin over keep-alive pools (http-proxy),
// client address in X-Forwarded-For / X-Forwarded-Proto / Forwarded, fail-over
// to another backend when a connect fails (or a bodyless idempotent request
// meets a dead keep-alive socket), WebSocket upgrades over a fail-over connect,
// and short 502/503/504 answers. Slow clients are bounded by headersTimeout.

import http from 'node:http';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import httpProxy from 'http-proxy';
import type { Backend } from './backends.js';
import { connectWithFailover, type ConnectContext } from './connect.js';
import { Listener, type ListenerConfig } from './listener.js';
import type { ResolvedOptions } from './types.js';

const MAX_ATTEMPTS = 4;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

interface Attempt {
  backend: Backend;
  connected: boolean;
  reused: boolean;
  timedOut: boolean;
}

interface RequestCtx {
  tried: Backend[] | undefined;
  current: Attempt | undefined;
  staleRetried: boolean;
}

/** an Agent that hands out one already-connected socket (WebSocket upgrades) */
class OneSocketAgent extends http.Agent {
  constructor(private readonly sock: net.Socket) {
    super({ keepAlive: false });
  }
  override createConnection(): net.Socket {
    return this.sock;
  }
}

function clientIp(addr: string | undefined): string {
  if (addr === undefined) return 'unknown';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

const SAFE_HOST = /^[A-Za-z0-9.:[\]-]+$/;

/** append this hop to X-Forwarded-For and Forwarded; set X-Forwarded-Proto */
export function addForwardHeaders(headers: http.IncomingHttpHeaders, remoteAddress: string | undefined): void {
  const ip = clientIp(remoteAddress);
  const xff = headers['x-forwarded-for'];
  headers['x-forwarded-for'] = xff ? `${xff}, ${ip}` : ip;
  headers['x-forwarded-proto'] = 'http';
  let fwd = ip.includes(':') ? `for="[${ip}]";proto=http` : `for=${ip};proto=http`;
  const host = headers.host;
  if (host !== undefined && SAFE_HOST.test(host)) fwd += `;host="${host}"`;
  const prev = headers.forwarded;
  headers.forwarded = prev ? `${prev}, ${fwd}` : fwd;
}

export class HttpListener extends Listener {
  readonly kind = 'http' as const;
  private server?: http.Server;
  private readonly agent: http.Agent;
  private readonly proxy: httpProxy;
  private readonly upgraded = new Set<net.Socket>();
  private readonly ctx: ConnectContext;

  constructor(cfg: ListenerConfig, opts: ResolvedOptions) {
    super(cfg, opts);
    this.ctx = { pool: this.pool, stats: this.stats, timeoutMs: opts.connectTimeoutMs, sourceAddr: opts.sourceAddr };
    this.agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
    this.proxy = httpProxy.createProxyServer({ proxyTimeout: opts.httpResponseTimeoutMs });
    this.proxy.on('error', () => {});
    this.proxy.on('proxyReq', (proxyReq, _req, _res, options) => this.onProxyReq(proxyReq, options));
  }

  protected async bind(): Promise<void> {
    const o = this.opts;
    const server = http.createServer(
      {
        headersTimeout: o.httpHeadersTimeoutMs,
        keepAliveTimeout: o.httpKeepAliveTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, o.httpHeadersTimeoutMs),
        noDelay: true,
      },
      (req, res) => this.onRequest(req, res),
    );
    server.maxConnections = o.maxConnectionsPerPort;
    server.on('connection', (s: net.Socket) => {
      const stats = this.stats;
      stats.connectionsTotal++;
      stats.connectionsActive++;
      s.once('close', () => {
        stats.connectionsActive--;
        stats.bytesIn += s.bytesRead;
        stats.bytesOut += s.bytesWritten;
      });
    });
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as net.Socket, head));
    this.server = await this.listenOn(server);
  }

  protected unbind(destroy: boolean): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    const closed = new Promise<void>((resolve) =>
      server.close(() => {
        this.agent.destroy(); // pooled backend sockets, once no client needs them
        resolve();
      }),
    );
    if (destroy) {
      server.closeAllConnections();
      for (const s of this.upgraded) s.destroy();
      this.agent.destroy();
      return closed;
    }
    // the port is free at once; busy connections finish their requests
    server.closeIdleConnections();
    return Promise.resolve();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const stats = this.stats;
    stats.requests++;
    const t0 = performance.now();
    res.once('close', () => stats.observeMs(performance.now() - t0));
    addForwardHeaders(req.headers, req.socket.remoteAddress);
    const b = this.pool.pick();
    if (b === undefined) {
      stats.noBackend++;
      reply(res, 503, 'no healthy backend for this service\n');
      return;
    }
    this.forward(req, res, { tried: undefined, current: undefined, staleRetried: false }, b);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestCtx, b: Backend): void {
    const att: Attempt = { backend: b, connected: false, reused: false, timedOut: false };
    ctx.current = att;
    const options = { target: b.target, agent: this.agent, localAddress: this.opts.sourceAddr?.(b.addr), meshAttempt: att };
    this.proxy.web(req, res, options, (err) => this.onWebError(err, req, res, ctx, att));
  }

  private onProxyReq(proxyReq: http.ClientRequest, options: object): void {
    const att = (options as { meshAttempt?: Attempt }).meshAttempt;
    if (att === undefined) return;
    proxyReq.once('timeout', () => (att.timedOut = true));
    const sock = proxyReq.socket;
    if (sock === null) return;
    if (!sock.connecting) {
      att.connected = true;
      att.reused = true;
      return;
    }
    const timer = setTimeout(() => {
      proxyReq.destroy(Object.assign(new Error('backend connect timed out'), { code: 'ETIMEDOUT' }));
    }, this.opts.connectTimeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      att.connected = true;
      this.pool.succeeded(att.backend);
    });
    sock.once('close', () => clearTimeout(timer));
  }

  private onWebError(_err: Error, req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestCtx, att: Attempt): void {
    if (ctx.current !== att) return; // a late error from an earlier attempt
    ctx.current = undefined;
    const stats = this.stats;
    stats.backendErrors++;
    if (!att.connected) this.pool.failed(att.backend);
    if (res.headersSent || res.writableEnded) {
      res.destroy();
      return;
    }
    if (req.socket.destroyed) return;
    const bodyless = !req.headers['transfer-encoding'] && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0');
    if (bodyless && !att.timedOut && (!att.connected || IDEMPOTENT.has(req.method ?? ''))) {
      let next: Backend | undefined;
      if (att.reused && !ctx.staleRetried) {
        // a keep-alive socket the backend had already closed: the backend itself may be fine
        ctx.staleRetried = true;
        next = this.pool.pick(ctx.tried);
      } else {
        (ctx.tried ??= []).push(att.backend);
        if (ctx.tried.length < MAX_ATTEMPTS) next = this.pool.pick(ctx.tried);
      }
      if (next !== undefined) {
        stats.retries++;
        this.forward(req, res, ctx, next);
        return;
      }
    }
    if (att.timedOut) reply(res, 504, 'backend did not answer in time\n');
    else reply(res, 502, 'no backend could answer\n');
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const stats = this.stats;
    stats.requests++;
    socket.on('error', () => {});
    addForwardHeaders(req.headers, socket.remoteAddress);
    const cancel = connectWithFailover(this.ctx, (err, up, b) => {
      if (err || up === undefined || b === undefined) {
        stats.noBackend++;
        const status = this.pool.size === 0 ? '503 Service Unavailable' : '502 Bad Gateway';
        socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        return;
      }
      if (socket.destroyed) {
        up.destroy();
        return;
      }
      this.upgraded.add(socket);
      socket.once('close', () => {
        this.upgraded.delete(socket);
        up.destroy();
      });
      const options = { target: b.target, agent: new OneSocketAgent(up) };
      this.proxy.ws(req, socket, head, options, () => {
        stats.backendErrors++;
        up.destroy();
      });
    });
    socket.once('close', cancel);
  }
}

function reply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
