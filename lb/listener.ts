// Owns the life of one published port's listener, whatever its protocol:
// binding, retrying a bind that failed (port in use) without throwing,
// status, stats, and taking backend-set updates without touching open
// connections. tcp.ts, udp.ts and http.ts fill in the sockets.

import type net from 'node:net';
import { BackendPool } from './backends.js';
import { PortStats, type PortStatsSnapshot } from './stats.js';
import type { MeshPort, PortStatus, ResolvedOptions, MeshService } from './types.js';
import { logger } from '../agent/common/log.js';

const log = logger('lb');

export interface ListenerConfig {
  serviceId: string;
  name: string;
  port: MeshPort;
}

export type ListenerKind = 'tcp' | 'http' | 'udp';

export function listenerKind(p: MeshPort): ListenerKind {
  return p.protocol === 'udp' ? 'udp' : p.mode === 'http' ? 'http' : 'tcp';
}

export abstract class Listener {
  readonly stats = new PortStats();
  readonly pool: BackendPool;
  state: 'binding' | 'listening' | 'failed' = 'binding';
  private error?: string;
  private retryAt?: number;
  private retryTimer?: NodeJS.Timeout;
  protected closed = false;

  constructor(
    public cfg: ListenerConfig,
    protected readonly opts: ResolvedOptions,
  ) {
    this.pool = new BackendPool(opts.backendPenaltyMs);
  }

  abstract readonly kind: ListenerKind;
  /** bind the port once; reject on failure, leaving nothing bound */
  protected abstract bind(): Promise<void>;

  /** binds a server to this listener's published port; later errors are the listener's to report, never fatal */
  protected listenOn<S extends net.Server>(server: S): Promise<S> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.cfg.port.publishedPort, host: this.opts.bindHost }, () => {
        server.removeListener('error', reject);
        server.on('error', () => {});
        resolve(server);
      });
    });
  }
  /** stop accepting; with destroy, also cut open connections/flows */
  protected abstract unbind(destroy: boolean): Promise<void>;

  /** take new settings and backends; open connections are not touched */
  update(cfg: ListenerConfig, backends: MeshService['backends']): void {
    this.cfg = cfg;
    this.pool.update(backends, cfg.port.targetPort);
  }

  async start(): Promise<void> {
    if (this.closed) return;
    try {
      await this.bind();
      if (this.closed) {
        await this.unbind(true);
        return;
      }
      this.state = 'listening';
      this.error = undefined;
      this.retryAt = undefined;
      log.info({ service: this.cfg.name, port: this.cfg.port.publishedPort, protocol: this.cfg.port.protocol, kind: this.kind }, 'mesh port listening');
    } catch (err) {
      this.state = 'failed';
      this.error = (err as Error).message;
      this.retryAt = Date.now() + this.opts.bindRetryMs;
      log.warn({ service: this.cfg.name, port: this.cfg.port.publishedPort, err: this.error }, 'mesh port bind failed; will retry');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.start();
      }, this.opts.bindRetryMs);
      this.retryTimer.unref();
    }
  }

  async close(destroy: boolean): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.state === 'listening') await this.unbind(destroy);
  }

  status(): PortStatus {
    const p = this.cfg.port;
    const s: PortStatus = {
      serviceId: this.cfg.serviceId,
      name: this.cfg.name,
      protocol: p.protocol,
      publishedPort: p.publishedPort,
      mode: this.kind === 'http' ? 'http' : 'tcp',
      state: this.state,
    };
    if (this.error !== undefined) s.error = this.error;
    if (this.retryAt !== undefined) s.retryAt = new Date(this.retryAt).toISOString();
    return s;
  }

  snapshot(): PortStatsSnapshot {
    const p = this.cfg.port;
    return this.stats.snapshot({
      serviceId: this.cfg.serviceId,
      name: this.cfg.name,
      protocol: p.protocol,
      publishedPort: p.publishedPort,
      mode: this.kind === 'http' ? 'http' : 'tcp',
    });
  }
}
