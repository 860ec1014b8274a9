// Owns the etcd store backend: every cluster object is one key,
// <prefix><kind>/<id> → JSON, and Version.Index is that key's mod_revision.
// Reads come from a local mirror (the in-memory store's tables and indexes)
// fed by one etcd watch on the prefix; the watch resumes from the last
// applied revision after a disconnect and, when that revision was compacted
// away, the mirror is reloaded and the difference delivered as one batch.
// update(fn) runs fn on the mirror (read-your-writes), then commits one etcd
// txn whose compares are the mod_revision of every key fn read by id or
// wrote (absent = 0), plus an optional leader fence; on a conflict the
// mirror catches up and fn runs again (fn must have no side effects outside
// the transaction). It resolves once the commit is in the mirror, so the
// caller's next read sees it; watchers get one batch per etcd revision, in
// order, exactly once. Lists are not guarded: two managers checking a name
// with list() at the same instant can both commit (as two API calls racing).
import { Etcd3, type ICompare, type IOptions, type IKeyValue, type IRequestOp, type Watcher } from 'etcd3';
import { ShoalError, errorMessage, unavailable } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import type { Kind, KindMap } from '../../common/types.js';
import { KINDS, MemoryStore } from './memory.js';
import { EtcdTx, StaleMirror } from './etcd-tx.js';
import type { Change, Store, WriteTx } from './types.js';

const log = logger('store-etcd');
const MAX_ATTEMPTS = 12;
const CATCH_UP_MS = 5_000;
const APPLY_TIMEOUT_MS = 30_000;

export interface EtcdTLS { caPem: string; certPem?: string; keyPem?: string }
export interface EtcdClientOptions { endpoints: string[]; tls?: EtcdTLS; callTimeoutMs?: number }
export interface EtcdStoreOptions extends EtcdClientOptions { prefix?: string }

/** leadership proof: the leader's election key and its create_revision */
export interface Fence { key: string; createRevision: number }

/** an etcd client with per-call deadlines on unary calls (streams stay open) */
export function etcdClient(opts: EtcdClientOptions): Etcd3 {
  const timeout = opts.callTimeoutMs ?? 5_000;
  return new Etcd3({
    hosts: opts.endpoints,
    credentials: opts.tls && {
      rootCertificate: Buffer.from(opts.tls.caPem),
      privateKey: opts.tls.keyPem ? Buffer.from(opts.tls.keyPem) : undefined,
      certChain: opts.tls.certPem ? Buffer.from(opts.tls.certPem) : undefined,
    },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    grpcOptions: {
      // reconnect within ~2 s after a member comes back; find dead peers (no RST) by pings.
      // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time).
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
      'grpc.keepalive_time_ms': 6_000,
      'grpc.keepalive_timeout_ms': 3_000,
    },
    // etcd3's default host policy opens a 5 s circuit after 3 failures of any
    // recoverable kind (even "unhealthy cluster" during a member add), which
    // with a single endpoint means 5 s of refused calls: pass calls through and
    // let the retry policy move to another endpoint instead
    faultHandling: { watchBackoff: backoff(0) as WatchBackoff, host: () => passThrough },
  });
}

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;
const passThrough = {
  execute: async (fn: (ctx: unknown) => unknown) => fn({ signal: new AbortController().signal }),
} as unknown as HostPolicy;

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/** watch re-establishment delays: 100 ms doubling to at most 2 s (etcd3's default grows to 30 s) */
function backoff(duration: number): { duration: number; next(): unknown } {
  return { duration, next: () => backoff(Math.min(2_000, Math.max(100, duration * 2))) };
}

interface Waiter { ready: () => boolean; done: () => void }

export class EtcdStore extends MemoryStore {
  private watcher: Watcher | undefined;
  private applied = 0; // last etcd revision whose events are in the mirror
  private waiters = new Set<Waiter>();
  private closed = false;
  private reloading: Promise<void> | null = null;

  private constructor(readonly client: Etcd3, readonly prefix: string, private ownsClient: boolean) { super(); }

  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    const client = etcdClient(opts);
    try {
      return await EtcdStore.withClient(client, opts.prefix, true);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** a store on an existing client (shared with the election); close() leaves the client open unless owned */
  static async withClient(client: Etcd3, prefix = '/shoal/', ownsClient = false): Promise<EtcdStore> {
    const s = new EtcdStore(client, prefix.endsWith('/') ? prefix : `${prefix}/`, ownsClient);
    await s.reload();
    return s;
  }

  /** the last etcd revision applied to the mirror */
  get appliedRevision(): number { return this.applied; }

  override update<T>(fn: (tx: WriteTx) => T): Promise<T> { return this.commit(fn, undefined); }

  /** a view whose writes also require `fence` to hold (a deposed leader's writes fail with 'unavailable') */
  fenced(fence: Fence): Store {
    const base = this as EtcdStore;
    return {
      get revision() { return base.revision; },
      get: (k, id) => base.get(k, id),
      list: (k, f) => base.list(k, f),
      byIndex: (k, i, v) => base.byIndex(k, i, v),
      update: (fn) => base.commit(fn, fence),
      watch: (fn) => base.watch(fn),
      close: async () => {},
    };
  }

  /** waits until the newest object under the prefix in etcd is in the mirror */
  async sync(): Promise<void> {
    const newest = await this.call(() => this.client.kv.range({
      key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix), sort_target: 'Mod', sort_order: 'Descend', limit: 1, keys_only: true,
    }));
    const want = newest.kvs.length ? Number(newest.kvs[0].mod_revision) : 0;
    await this.waitMirror(() => this.applied >= want, APPLY_TIMEOUT_MS);
  }

  private async commit<T>(fn: (tx: WriteTx) => T, fence: Fence | undefined): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw unavailable('store is closed');
      const tx = new EtcdTx(this);
      let result: T;
      try {
        result = fn(tx);
      } catch (err) {
        if (!(err instanceof StaleMirror) || attempt >= MAX_ATTEMPTS) throw err;
        await this.sync();
        continue;
      }
      if (tx.pending.size === 0) return result;
      const res = await this.call(() => this.client.kv.txn(this.txnRequest(tx, fence)));
      const rev = Number(res.header.revision);
      if (res.succeeded) {
        await this.waitMirror(() => this.applied >= rev, APPLY_TIMEOUT_MS);
        return result;
      }
      if (fence && !fenceHolds(res.responses[0]?.response_range?.kvs ?? [], fence)) {
        throw unavailable('this manager is no longer the leader');
      }
      if (attempt >= MAX_ATTEMPTS) throw unavailable('store: too many conflicting updates; try again');
      // catch up on the keys whose compare failed, then run fn again
      const current = new Map<string, number>();
      for (const r of res.responses.slice(fence ? 1 : 0)) for (const kv of r.response_range.kvs) current.set(kv.key.toString(), Number(kv.mod_revision));
      await this.waitMirror(() => [...tx.seen.keys()].every((k) => this.caughtUp(k, current.get(this.prefix + k), rev)), CATCH_UP_MS).catch(() => {});
      if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
    }
  }

  private caughtUp(key: string, etcdRev: number | undefined, failRev: number): boolean {
    const slash = key.indexOf('/');
    const o = this.get(key.slice(0, slash) as Kind, key.slice(slash + 1));
    if (etcdRev !== undefined) return !!o && o.Version.Index >= etcdRev;
    return !o || o.Version.Index > failRev;
  }

  private txnRequest(tx: EtcdTx, fence: Fence | undefined) {
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    const failure: IRequestOp[] = [];
    if (fence) {
      compare.push({ key: Buffer.from(fence.key), target: 'Create', result: 'Equal', create_revision: fence.createRevision });
      failure.push({ request_range: { key: Buffer.from(fence.key) } });
    }
    for (const [k, rev] of tx.seen) {
      compare.push({ key: Buffer.from(this.prefix + k), target: 'Mod', result: 'Equal', mod_revision: rev });
      failure.push({ request_range: { key: Buffer.from(this.prefix + k), keys_only: true } });
    }
    for (const [k, op] of tx.pending) {
      const key = Buffer.from(this.prefix + k);
      if (op.action === 'remove') success.push({ request_delete_range: { key } });
      else success.push({ request_put: { key, value: Buffer.from(JSON.stringify({ ...op.object, Version: undefined })) } });
    }
    return { compare, success, failure };
  }

  private async call<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ShoalError) throw err;
      throw unavailable(`store (etcd) unavailable: ${errorMessage(err)}`);
    }
  }

  private waitMirror(ready: () => boolean, timeoutMs: number): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w: Waiter = { ready, done: () => { clearTimeout(timer); this.waiters.delete(w); resolve(); } };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(unavailable('store (etcd): the watch did not deliver a committed change in time'));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) if (this.closed || w.ready()) w.done();
  }

  /** (re)loads the whole prefix into the mirror, delivers the difference, and watches from there */
  private reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        if (this.watcher) { const w = this.watcher; this.watcher = undefined; await w.cancel().catch(() => {}); }
        const res = await this.client.kv.range({ key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix) });
        const rev = Number(res.header.revision);
        const changes: Change[] = [];
        const present = new Set<string>();
        for (const kv of res.kvs) {
          const parsed = this.decode(kv);
          if (!parsed) continue;
          present.add(`${parsed.kind}/${parsed.object.ID}`);
          const old = this.get(parsed.kind, parsed.object.ID);
          if (old && old.Version.Index === parsed.object.Version.Index) continue;
          this.rawPut(parsed.kind, parsed.object);
          changes.push({ kind: parsed.kind, action: old ? 'update' : 'create', object: parsed.object, revision: rev });
        }
        for (const kind of KINDS) {
          for (const o of this.list(kind)) {
            if (present.has(`${kind}/${o.ID}`)) continue;
            this.rawRemove(kind, o.ID);
            changes.push({ kind, action: 'remove', object: o, revision: rev });
          }
        }
        this.applied = Math.max(this.applied, rev);
        this.setRevision(rev);
        if (changes.length && !this.closed) this.notify(changes);
        this.wake();
        if (!this.closed) await this.startWatch(rev + 1);
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  private async startWatch(from: number): Promise<void> {
    const w = await this.client.watch().prefix(this.prefix).startRevision(String(from)).create();
    if (this.closed) { await w.cancel().catch(() => {}); return; }
    this.watcher = w;
    const pin = () => { w.request.start_revision = String(this.applied + 1); };
    w.on('connected', pin);
    w.on('data', (res) => {
      this.onEvents(res.events);
      pin();
    });
    w.on('disconnected', (err) => log.warn({ err: errorMessage(err) }, 'etcd watch disconnected; resuming'));
    w.on('error', (err) => {
      // canceled by etcd (most often: our revision was compacted): reload
      log.warn({ err: errorMessage(err) }, 'etcd watch canceled; reloading the mirror');
      if (this.watcher === w) this.watcher = undefined;
      this.retryReload();
    });
  }

  private retryReload(): void {
    if (this.closed) return;
    this.reload().catch((err) => {
      log.warn({ err: errorMessage(err) }, 'store reload failed; retrying');
      setTimeout(() => this.retryReload(), 500);
    });
  }

  private onEvents(events: { type: string; kv: IKeyValue }[]): void {
    let batch: Change[] = [];
    let batchRev = 0;
    const flush = () => {
      if (batchRev) {
        this.applied = batchRev;
        this.setRevision(batchRev);
        if (batch.length) this.notify(batch);
      }
      batch = [];
    };
    for (const ev of events) {
      const rev = Number(ev.kv.mod_revision);
      if (rev <= this.applied) continue; // already applied (a resumed watch may repeat)
      if (rev !== batchRev) { flush(); batchRev = rev; }
      const parsed = this.decodeKey(ev.kv.key.toString());
      if (!parsed) continue;
      const old = this.get(parsed.kind, parsed.id);
      if (ev.type === 'Delete') {
        if (!old) continue;
        this.rawRemove(parsed.kind, parsed.id);
        batch.push({ kind: parsed.kind, action: 'remove', object: old, revision: rev });
      } else {
        const decoded = this.decode(ev.kv);
        if (!decoded) continue;
        this.rawPut(decoded.kind, decoded.object);
        batch.push({ kind: decoded.kind, action: old ? 'update' : 'create', object: decoded.object, revision: rev });
      }
    }
    flush();
    this.wake();
  }

  private decodeKey(key: string): { kind: Kind; id: string } | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const slash = rest.indexOf('/');
    const kind = rest.slice(0, slash) as Kind;
    if (slash < 0 || !KINDS.includes(kind)) return undefined;
    return { kind, id: rest.slice(slash + 1) };
  }

  private decode(kv: IKeyValue): { kind: Kind; object: KindMap[Kind] } | undefined {
    const k = this.decodeKey(kv.key.toString());
    if (!k) return undefined;
    try {
      const object = JSON.parse(kv.value.toString()) as KindMap[Kind];
      object.Version = { Index: Number(kv.mod_revision) };
      return { kind: k.kind, object };
    } catch (err) {
      log.error({ key: kv.key.toString(), err: errorMessage(err) }, 'undecodable object in etcd; ignored');
      return undefined;
    }
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reloading?.catch(() => {});
    const w = this.watcher;
    this.watcher = undefined;
    await w?.cancel().catch(() => {});
    for (const wt of [...this.waiters]) wt.done();
    await super.close();
    if (this.ownsClient) this.client.close();
  }
}

function fenceHolds(kvs: IKeyValue[], fence: Fence): boolean {
  return kvs.length > 0 && Number(kvs[0].create_revision) === fence.createRevision;
}

/** the range end that covers every key starting with prefix */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) { const e = Buffer.from(b.subarray(0, i + 1)); e[i]++; return e; }
  }
  return Buffer.from([0]);
}
