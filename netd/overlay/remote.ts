// Owns the client of serve.ts: an OverlayDriver living in another process,
// optionally inside a named network namespace (`ip netns exec NS node serve.js`).
// Same methods as OverlayDriver; calls reject with 'unavailable' if the
// process dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ShoalError, unavailable, type ErrorCode } from '../../agent/common/errors.js';
import { sbin } from './bin.js';
import type { AttachOptions, OverlayNetwork, Peer, PeerDiff } from './driver.js';
import type { FdbEntry, NeighEntry } from './rtnl.js';

const SERVE_JS = fileURLToPath(new URL('./serve.js', import.meta.url));

export class RemoteOverlayDriver {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {}

  /** Starts the driver process, in network namespace `netns` if given, and waits until it is ready. */
  static async spawn(opts: { netns?: string; readyTimeoutMs?: number } = {}): Promise<RemoteOverlayDriver> {
    const argv = [process.execPath, SERVE_JS];
    const cmd = opts.netns ? [sbin('ip'), 'netns', 'exec', opts.netns, ...argv] : argv;
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const d = new RemoteOverlayDriver(child);
    child.stdin!.on('error', () => undefined); // the process died: 'exit' rejects what is pending
    child.stderr!.on('data', (b: Buffer) => { d.stderr = (d.stderr + b.toString()).slice(-4000); });
    let onReady!: () => void;
    const ready = new Promise<void>((r) => { onReady = r; });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: { id?: number; ready?: boolean; result?: unknown; error?: { code: ErrorCode; message: string } };
      try { msg = JSON.parse(line); } catch { return; }
      if (msg.ready) return onReady();
      const p = msg.id === undefined ? undefined : d.pending.get(msg.id);
      if (!p) return;
      d.pending.delete(msg.id!);
      if (msg.error) p.reject(new ShoalError(msg.error.code, msg.error.message));
      else p.resolve(msg.result);
    });
    const exited = new Promise<void>((r) => child.on('exit', () => {
      d.exited = true;
      for (const p of d.pending.values()) p.reject(unavailable(`overlay driver process exited: ${d.stderr.trim()}`));
      d.pending.clear();
      r();
    }));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), opts.readyTimeoutMs ?? 20_000); });
    const first = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const), timeout]);
    clearTimeout(timer);
    if (first !== 'ready') {
      child.kill('SIGKILL');
      throw unavailable(`overlay driver process did not start (${first}): ${d.stderr.trim()}`);
    }
    return d;
  }

  get pid(): number | undefined { return this.child.pid; }
  /** false once the driver process has exited (a new one must be spawned) */
  get alive(): boolean { return !this.exited; }

  private call<T>(method: string, ...params: unknown[]): Promise<T> {
    if (this.exited) return Promise.reject(unavailable('overlay driver process has exited'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ id, method, params }) + '\n');
    });
  }

  ensureNetwork(n: OverlayNetwork): Promise<void> { return this.call('ensureNetwork', n); }
  removeNetwork(vni: number): Promise<void> { return this.call('removeNetwork', vni); }
  attach(o: AttachOptions): Promise<{ mac: string; hostIfname: string }> { return this.call('attach', o); }
  detach(o: { vni: number; address: string }): Promise<void> { return this.call('detach', o); }
  setPeers(vni: number, peers: Peer[]): Promise<PeerDiff> { return this.call('setPeers', vni, peers); }
  peers(vni: number): Promise<{ fdb: FdbEntry[]; neighbours: NeighEntry[] }> { return this.call('peers', vni); }
  networks(): Promise<{ vni: number; bridge: string; subnet?: string }[]> { return this.call('networks'); }

  /** Ends the process (stdin closed, then SIGKILL after a bound). */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  }
}
