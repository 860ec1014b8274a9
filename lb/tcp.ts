// Owns TCP mode: accept a client, connect to a backend with fail-over
// (connect.ts), optionally send a PROXY protocol header with the client's
// address, then pipe both ways with backpressure and half-close. An idle
// timeout on the client side reaps half-open and silent connections.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { connectWithFailover, type ConnectContext } from './connect.js';
import { Listener, type ListenerConfig } from './listener.js';
import { encodeProxyHeader } from './proxy-protocol.js';
import type { ResolvedOptions } from './types.js';

export class TcpListener extends Listener {
  readonly kind = 'tcp' as const;
  private server?: net.Server;
  private readonly clients = new Set<net.Socket>();
  private readonly ctx: ConnectContext;

  constructor(cfg: ListenerConfig, opts: ResolvedOptions) {
    super(cfg, opts);
    this.ctx = { pool: this.pool, stats: this.stats, timeoutMs: opts.connectTimeoutMs, sourceAddr: opts.sourceAddr };
  }

  protected async bind(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (c) => this.onClient(c));
    server.maxConnections = this.opts.maxConnectionsPerPort;
    this.server = await this.listenOn(server);
  }

  protected unbind(destroy: boolean): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    // the port is free as soon as close() returns; its callback waits for open connections
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (!destroy) return Promise.resolve();
    for (const c of this.clients) c.destroy();
    return closed;
  }

  private onClient(client: net.Socket): void {
    const stats = this.stats;
    const t0 = performance.now();
    stats.connectionsTotal++;
    stats.connectionsActive++;
    stats.requests++;
    this.clients.add(client);
    let upstream: net.Socket | undefined;
    let cancel: (() => void) | undefined;

    client.setTimeout(this.opts.tcpIdleTimeoutMs);
    client.on('timeout', () => {
      client.destroy();
      upstream?.destroy();
    });
    client.on('error', () => {});
    client.on('close', (hadError) => {
      this.clients.delete(client);
      stats.connectionsActive--;
      stats.bytesIn += client.bytesRead;
      stats.bytesOut += client.bytesWritten;
      if (upstream === undefined) cancel?.();
      else if (hadError || !client.readableEnded) upstream.destroy();
    });

    const proxyProtocol = this.cfg.port.proxyProtocol;
    cancel = connectWithFailover(this.ctx, (err, up) => {
      cancel = undefined;
      if (err || up === undefined) {
        stats.noBackend++;
        // close cleanly: FIN, drop whatever the client sends until it closes
        client.end();
        client.resume();
        client.setTimeout(Math.min(this.opts.tcpIdleTimeoutMs, 5000));
        return;
      }
      if (client.destroyed) {
        up.destroy();
        return;
      }
      upstream = up;
      stats.observeMs(performance.now() - t0);
      up.on('error', () => {});
      up.on('close', (hadError) => {
        if (hadError || !up.readableEnded) client.destroy();
      });
      if (proxyProtocol !== undefined) {
        up.write(
          encodeProxyHeader(proxyProtocol, {
            srcAddr: client.remoteAddress,
            srcPort: client.remotePort,
            dstAddr: client.localAddress,
            dstPort: client.localPort,
          }),
        );
      }
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
  }
}
