// Owns the Docker-compatible API server: listens on a unix socket (and
// optionally TCP with client-certificate TLS), strips /v1.NN prefixes, answers
// the swarm, network and system routes itself and forwards everything else
// to the local dockerd byte for byte (including attach/exec hijacking).
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { ShoalError, invalid } from '../common/errors.js';
import { logger } from '../common/log.js';
import { VERSION } from '../common/version.js';
import type { SwarmBackend } from './backend.js';
import type { Ctx, Route } from './context.js';
import { eventsRoutes } from './events-routes.js';
import { logsRoutes } from './logs-routes.js';
import { networkRoutes } from './network-routes.js';
import { secretRoutes } from './secret-routes.js';
import { API_VERSION, MIN_API_VERSION, identityHeaders, sendError } from './respond.js';
import { swarmRoutes } from './swarm-routes.js';
import { systemRoutes } from './system-routes.js';
import { Upstream } from './upstream.js';

const log = logger('api');

export interface ApiServerOptions {
  backend: SwarmBackend;
  /** dockerd to forward to: unix:///var/run/docker.sock or tcp://host:port */
  dockerHost: string;
}

export interface TlsOptions { cert: string | Buffer; key: string | Buffer; ca: string | Buffer }

const ROUTES: Route[] = [...systemRoutes, ...swarmRoutes, ...logsRoutes, ...eventsRoutes, ...secretRoutes, ...networkRoutes];

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

export class ApiServer {
  private readonly backend: SwarmBackend;
  private readonly upstream: Upstream;
  private readonly serverName = `shoal/${VERSION}`;
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly socketPaths: string[] = [];

  constructor(opts: ApiServerOptions) {
    this.backend = opts.backend;
    this.upstream = new Upstream(opts.dockerHost);
  }

  /** serves on a unix socket: creates its folder, replaces a stale socket, mode 660 */
  async listenUnix(socketPath: string): Promise<void> {
    await mkdir(path.dirname(socketPath), { recursive: true });
    try {
      const st = await lstat(socketPath);
      if (!st.isSocket()) throw invalid(`${socketPath} exists and is not a socket`);
      await unlink(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const server = this.makeServer(http.createServer());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => { server.off('error', reject); resolve(); });
    });
    await chmod(socketPath, 0o660);
    this.socketPaths.push(socketPath);
  }

  /** serves on TCP; with `tls`, clients must present a certificate signed by `tls.ca`. Returns the bound port. */
  async listenTcp(host: string, port: number, tls?: TlsOptions): Promise<number> {
    const server = this.makeServer(tls
      ? https.createServer({ cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true })
      : http.createServer());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => { server.off('error', reject); resolve(); });
    });
    const addr = server.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))
      .catch(() => undefined)));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.servers.length = 0;
    this.upstream.close();
    for (const p of this.socketPaths.splice(0)) await unlink(p).catch(() => undefined);
  }

  private makeServer(server: http.Server): http.Server {
    server.requestTimeout = 0; // image loads and builds stream large bodies
    server.headersTimeout = 60_000;
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('secureConnection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('request', (req, res) => this.handle(req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      log.debug({ method: req.method, url: req.url }, 'hijack');
      this.upstream.hijack(req, socket, head);
    });
    server.on('clientError', (err, socket) => {
      log.debug({ err: err.message }, 'client error');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.servers.push(server);
    return server;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    for (const [k, v] of Object.entries(identityHeaders(this.serverName))) res.setHeader(k, v);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://docker');
    } catch {
      sendError(res, invalid('malformed request URL'));
      return;
    }
    let p = url.pathname;
    let version: string | undefined;
    const vm = /^\/v([0-9]+(?:\.[0-9]+)?)(\/.*)$/.exec(p);
    if (vm) { version = vm[1]; p = vm[2]!; }
    const match = this.match(req.method ?? 'GET', p);
    if (!match) {
      this.upstream.forward(req, res);
      return;
    }
    if (version && compareVersions(version, API_VERSION) > 0) {
      sendError(res, invalid(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`));
      return;
    }
    if (version && compareVersions(version, MIN_API_VERSION) < 0) {
      sendError(res, invalid(`client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`));
      return;
    }
    let params: string[];
    try {
      params = match.params.map((x) => decodeURIComponent(x));
    } catch {
      sendError(res, invalid('malformed path parameter'));
      return;
    }
    const ctx: Ctx = { req, res, path: p, query: url.searchParams, params, backend: this.backend, upstream: this.upstream, serverName: this.serverName };
    Promise.resolve()
      .then(() => match.route.handler(ctx))
      .catch((err: unknown) => {
        const fault = !(err instanceof ShoalError) || err.code === 'internal';
        log[fault ? 'warn' : 'debug']({ err: (err as Error)?.message, method: req.method, url: req.url }, 'request failed');
        if (!req.complete) req.resume();
        sendError(res, err);
      });
  }

  private match(method: string, p: string): { route: Route; params: string[] } | undefined {
    for (const r of ROUTES) {
      if (r.method !== method) continue;
      const m = r.pattern.exec(p);
      if (m) return { route: r, params: m.slice(1) };
    }
    return undefined;
  }
}
