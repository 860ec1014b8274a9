// Owns the connection to the local dockerd: byte-for-byte proxying of every
// call shoal does not answer itself (http-proxy, keep-alive, chunked streams
// untouched), connection hijacking for attach/exec (`Upgrade: tcp` → 101 and
// a raw duplex stream), and small JSON requests for /info, /version, /networks.
import http from 'node:http';
import net from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { ShoalError } from '../common/errors.js';
import { logger } from '../common/log.js';

const log = logger('api.upstream');

export type DockerTarget = { socketPath: string } | { host: string; port: number };

/** unix:///var/run/docker.sock or tcp://host:port (http://… accepted too) */
export function parseDockerHost(dockerHost: string): DockerTarget {
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  const m = /^(?:tcp|http):\/\/\[?([^\]/]+?)\]?:(\d+)\/?$/.exec(dockerHost);
  if (m) return { host: m[1]!, port: Number(m[2]) };
  if (dockerHost.startsWith('/')) return { socketPath: dockerHost };
  throw new ShoalError('invalid', `unsupported docker host ${dockerHost}`);
}

export class Upstream {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly proxy: httpProxy;

  constructor(readonly dockerHost: string, private readonly target = parseDockerHost(dockerHost)) {
    this.proxy = httpProxy.createProxyServer({
      target: 'socketPath' in target ? { socketPath: target.socketPath } as never : { host: target.host, port: target.port } as never,
      agent: this.agent,
      xfwd: false,
      ws: false,
    });
    // Node holds response headers back until the first body byte; long polls
    // such as /containers/{id}/wait send headers first and the body much later,
    // and the CLI waits for those headers before it starts the container.
    this.proxy.on('proxyRes', (_proxyRes, _req, res) => {
      process.nextTick(() => { if (!res.headersSent && !res.writableEnded) res.flushHeaders(); });
    });
    this.proxy.on('error', (err, _req, res) => {
      log.warn({ err: err.message }, 'dockerd proxy error');
      if (res instanceof http.ServerResponse) {
        if (!res.headersSent) {
          const body = JSON.stringify({ message: this.unreachable() }) + '\n';
          res.writeHead(500, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
          res.end(body);
        } else {
          res.destroy();
        }
      } else {
        (res as unknown as Duplex | undefined)?.destroy?.();
      }
    });
  }

  unreachable(): string {
    return `Cannot connect to the Docker daemon at ${this.dockerHost}. Is the docker daemon running?`;
  }

  /** forwards req to dockerd as is; `body` replaces the request stream when it was already read */
  forward(req: http.IncomingMessage, res: http.ServerResponse, body?: Buffer): void {
    const opts: httpProxy.ServerOptions = {};
    if (body) opts.buffer = bufferStream(body);
    this.proxy.web(req, res, opts);
  }

  /** attach/exec hijack: replay the request head to dockerd, then splice both sockets */
  hijack(req: http.IncomingMessage, client: Duplex, head: Buffer): void {
    const connectOpts = 'socketPath' in this.target ? { path: this.target.socketPath } : { host: this.target.host, port: this.target.port };
    const up = net.connect({ ...connectOpts, allowHalfOpen: true });
    let connected = false;
    const fail = (err: Error) => {
      log.warn({ err: err.message, url: req.url }, 'hijack failed');
      if (client.writable && !connected) {
        const body = JSON.stringify({ message: this.unreachable() }) + '\n';
        client.end(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      } else {
        client.destroy();
      }
      up.destroy();
    };
    up.once('error', fail);
    client.once('error', () => up.destroy());
    up.once('connect', () => {
      connected = true;
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) up.write(head);
      up.off('error', fail);
      up.on('error', () => client.destroy());
      up.pipe(client);
      client.pipe(up);
      up.on('close', () => client.destroy());
      client.on('close', () => up.destroy());
    });
  }

  /** a small request to dockerd whose response is read whole */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request({
        ...('socketPath' in this.target ? { socketPath: this.target.socketPath } : { host: this.target.host, port: this.target.port }),
        agent: this.agent,
        method,
        path,
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {},
        timeout: 30_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('dockerd request timed out')));
      req.on('error', () => reject(new ShoalError('internal', this.unreachable())));
      req.end(payload);
    });
  }

  /** GET a JSON document from dockerd; a non-2xx answer is rethrown with dockerd's message */
  async getJson<T>(path: string): Promise<T> {
    const r = await this.request('GET', path);
    let parsed: unknown;
    try { parsed = JSON.parse(r.body.toString('utf8')); } catch { parsed = undefined; }
    if (r.status < 200 || r.status > 299) {
      const msg = (parsed as { message?: string } | undefined)?.message ?? `dockerd answered ${r.status}`;
      throw new UpstreamError(r.status, msg);
    }
    return parsed as T;
  }

  close(): void {
    this.proxy.close();
    this.agent.destroy();
  }
}

/** a dockerd error passed through with dockerd's own status */
export class UpstreamError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

function bufferStream(body: Buffer): Readable {
  // http-proxy pipes `buffer` into the upstream request
  return Readable.from([body]);
}
