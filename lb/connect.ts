// Owns connecting to a backend with fail-over: pick a backend, connect with a
// short timeout, and on refusal/reset/timeout penalise it and try the next at
// once, each backend at most once per call. Used by TCP mode and by
// WebSocket upgrades in HTTP mode.

import net from 'node:net';
import type { Backend, BackendPool } from './backends.js';
import type { PortStats } from './stats.js';

export interface ConnectContext {
  pool: BackendPool;
  stats: PortStats;
  timeoutMs: number;
  sourceAddr?: (backendAddr: string) => string | undefined;
}

export type ConnectDone = (err: Error | null, sock?: net.Socket, backend?: Backend) => void;

const MAX_ATTEMPTS = 8;

export class NoBackendError extends Error {
  readonly code = 'ENOBACKEND';
  constructor(readonly lastError?: Error) {
    super(lastError ? `no backend answered (last: ${lastError.message})` : 'no healthy backend');
  }
}

/**
 * Connect to some backend. `done` runs once: with a connected socket (no
 * listeners of ours left on it: attach your own 'error' handler at once) or
 * with a NoBackendError. Returns a cancel function (destroys a pending attempt;
 * `done` is then never called).
 */
export function connectWithFailover(ctx: ConnectContext, done: ConnectDone): () => void {
  let tried: Backend[] | undefined;
  let current: net.Socket | undefined;
  let cancelled = false;

  const attempt = (lastErr?: Error): void => {
    const b = (tried?.length ?? 0) < MAX_ATTEMPTS ? ctx.pool.pick(tried) : undefined;
    if (b === undefined) {
      current = undefined;
      done(new NoBackendError(lastErr));
      return;
    }
    const localAddress = ctx.sourceAddr?.(b.addr);
    const s = net.connect({ host: b.host, port: b.port, localAddress, allowHalfOpen: true, noDelay: true });
    current = s;
    s.setTimeout(ctx.timeoutMs);
    const fail = (err: Error): void => {
      s.removeListener('connect', onConnect);
      s.removeListener('timeout', onTimeout);
      s.removeListener('error', fail);
      s.on('error', noop);
      s.destroy();
      if (cancelled) return;
      ctx.pool.failed(b);
      ctx.stats.backendErrors++;
      (tried ??= []).push(b);
      if (ctx.pool.size > tried.length) ctx.stats.retries++;
      attempt(err);
    };
    const onTimeout = (): void => fail(Object.assign(new Error(`connect to ${b.host}:${b.port} timed out`), { code: 'ETIMEDOUT' }));
    const onConnect = (): void => {
      s.removeListener('error', fail);
      s.removeListener('timeout', onTimeout);
      s.setTimeout(0);
      current = undefined;
      ctx.pool.succeeded(b);
      if (cancelled) {
        s.destroy();
        return;
      }
      done(null, s, b);
    };
    s.once('connect', onConnect);
    s.once('error', fail);
    s.once('timeout', onTimeout);
  };

  attempt();
  return () => {
    cancelled = true;
    current?.destroy();
  };
}

function noop(): void {}
