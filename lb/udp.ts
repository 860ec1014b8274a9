// Owns UDP mode: one flow per client address:port, each with its own
// connected socket to a backend chosen round robin; replies go back from the
// published port. A refused backend (ICMP port unreachable) ends the flow and
// penalises the backend, so the client's next datagram goes elsewhere. Flows
// idle longer than udpIdleTimeoutMs are swept.

import dgram from 'node:dgram';
import net from 'node:net';
import type { Backend } from './backends.js';
import { Listener } from './listener.js';

interface Flow {
  sock: dgram.Socket;
  backend: Backend;
  last: number;
  /** datagrams waiting for the backend socket to connect */
  pending: Buffer[] | undefined;
  closed: boolean;
}

const MAX_PENDING = 64;

export class UdpListener extends Listener {
  readonly kind = 'udp' as const;
  private server?: dgram.Socket;
  private readonly flows = new Map<string, Flow>();
  private sweeper?: NodeJS.Timeout;

  protected bind(): Promise<void> {
    const type = net.isIPv6(this.opts.bindHost) ? 'udp6' : 'udp4';
    const server = dgram.createSocket({ type });
    return new Promise((resolve, reject) => {
      server.once('error', (err) => {
        server.close();
        reject(err);
      });
      server.bind({ port: this.cfg.port.publishedPort, address: this.opts.bindHost, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', () => {});
        server.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
        this.server = server;
        const every = Math.max(250, Math.min(this.opts.udpIdleTimeoutMs / 4, 10_000));
        this.sweeper = setInterval(() => this.sweep(), every);
        this.sweeper.unref();
        resolve();
      });
    });
  }

  protected async unbind(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const [key, f] of this.flows) this.endFlow(key, f);
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const stats = this.stats;
    stats.requests++;
    stats.bytesIn += msg.length;
    const key = `${rinfo.address}:${rinfo.port}`;
    let f = this.flows.get(key);
    if (f === undefined) {
      if (this.flows.size >= this.opts.maxUdpFlows) {
        stats.noBackend++;
        return;
      }
      const created = this.newFlow(key, rinfo);
      if (created === undefined) {
        stats.noBackend++;
        return;
      }
      f = created;
    }
    f.last = Date.now();
    if (f.pending !== undefined) {
      if (f.pending.length < MAX_PENDING) f.pending.push(msg);
    } else {
      f.sock.send(msg);
    }
  }

  private newFlow(key: string, client: dgram.RemoteInfo): Flow | undefined {
    const b = this.pool.pick();
    if (b === undefined) return undefined;
    const sock = dgram.createSocket(net.isIPv6(b.host) ? 'udp6' : 'udp4');
    const f: Flow = { sock, backend: b, last: Date.now(), pending: [], closed: false };
    this.flows.set(key, f);
    this.stats.connectionsTotal++;
    this.stats.connectionsActive++;
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') {
        this.pool.failed(b);
        this.stats.backendErrors++;
      }
      this.endFlow(key, f);
    });
    sock.on('message', (reply) => {
      f.last = Date.now();
      this.stats.bytesOut += reply.length;
      this.server?.send(reply, client.port, client.address);
    });
    const connect = (): void => {
      sock.connect(b.port, b.host, () => {
        if (f.closed) return;
        const q = f.pending!;
        f.pending = undefined;
        for (const m of q) sock.send(m);
      });
    };
    const local = this.opts.sourceAddr?.(b.addr);
    if (local !== undefined) sock.bind({ address: local, port: 0 }, connect);
    else connect();
    return f;
  }

  private endFlow(key: string, f: Flow): void {
    if (f.closed) return;
    f.closed = true;
    if (this.flows.get(key) === f) this.flows.delete(key);
    this.stats.connectionsActive--;
    try {
      f.sock.close();
    } catch {
      // already closed
    }
  }

  private sweep(): void {
    const cutoff = Date.now() - this.opts.udpIdleTimeoutMs;
    for (const [key, f] of this.flows) if (f.last < cutoff) this.endFlow(key, f);
  }
}
