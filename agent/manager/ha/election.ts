// Owns leader election among managers through etcd. Each candidate holds a
// lease (TTL ttlSeconds, kept alive by the etcd3 client) and one key
// <prefix><lease id> = node id attached to it; the candidate whose key has the
// lowest create_revision is the leader, the others wait for the key just
// before theirs to go away (etcd's election recipe). The leader's fence is its
// key and create_revision: EtcdStore.fenced(fence) adds a compare on it to
// every write, so once the lease expires (the key is deleted) a deposed
// leader cannot write. Loss is detected locally without waiting for etcd: a
// leader whose keepalives have not been confirmed for ttl minus a margin
// (measured from when the last confirmed keepalive was sent, so always before
// etcd can expire the lease) calls onDeposed at once; so do a lost lease and
// the deletion of its own key. leader() follows the election keys through a
// watch, for `node ls`.
import type { Etcd3, IKeyValue, Lease, Watcher } from 'etcd3';
import { errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { prefixEnd, type Fence } from '../store/etcd.js';

const log = logger('election');

export interface LeaderElectionOptions {
  nodeId: string;
  /** lease TTL, default 2 (etcd's minimum): a dead leader is replaced after about this long plus, when its etcd member was the Raft leader, etcd's own election and lease extension (~2 s) */
  ttlSeconds?: number;
  /** where the election keys live: keep it outside the store's prefix */
  prefix?: string;
  /** this manager became the leader: start leader work, writing through store.fenced(fence) */
  onElected(fence: Fence): void;
  /** this manager is no longer the leader: stop leader work now */
  onDeposed(reason: string): void;
  /** the leader (node id) changed, as observed */
  onLeaderChange?(leader: string | undefined): void;
}

export class LeaderElection {
  private readonly ttl: number;
  private readonly prefix: string;
  private stopped = true;
  private current: Fence | undefined;
  private abort: ((reason: string) => void) | undefined;
  private loop: Promise<void> | undefined;
  private candidates = new Map<string, { nodeId: string; rev: number }>();
  private observer: Watcher | undefined;
  private observing = false;
  private lastLeader: string | undefined;

  constructor(private client: Etcd3, private opts: LeaderElectionOptions) {
    this.ttl = Math.max(2, Math.round(opts.ttlSeconds ?? 2));
    const p = opts.prefix ?? '/shoal-leader/';
    this.prefix = p.endsWith('/') ? p : `${p}/`;
  }

  /** starts campaigning (and observing); idempotent */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.campaignLoop();
    void this.observe();
  }

  /** resigns (the lease is revoked so another manager takes over at once) and stops */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort?.('stopped');
    await this.loop;
    this.observing = false;
    const w = this.observer;
    this.observer = undefined;
    await w?.cancel().catch(() => {});
  }

  isLeader(): boolean { return this.current !== undefined; }
  fence(): Fence | undefined { return this.current; }

  /** node id of the current leader as last observed; undefined when unknown (no leader, or etcd out of reach) */
  leader(): string | undefined {
    if (!this.observing) return undefined;
    let best: { nodeId: string; rev: number } | undefined;
    for (const c of this.candidates.values()) if (!best || c.rev < best.rev) best = c;
    return best?.nodeId;
  }

  private async campaignLoop(): Promise<void> {
    let backoff = 250;
    while (!this.stopped) {
      const started = Date.now();
      const reason = await this.campaignOnce().catch((err) => `campaign failed: ${errorMessage(err)}`);
      this.depose(reason);
      if (this.stopped) break;
      backoff = Date.now() - started > 10_000 ? 250 : Math.min(backoff * 2, 2_000);
      await sleep(backoff);
    }
  }

  /** leader work stops the moment loss is known, before any cleanup */
  private depose(reason: string): void {
    if (!this.current) return;
    this.current = undefined;
    log.warn({ reason }, 'leadership lost');
    try { this.opts.onDeposed(reason); } catch (err) { log.error({ err: errorMessage(err) }, 'onDeposed failed'); }
  }

  /** one lease, one key: campaigns, leads, and returns why it ended */
  private async campaignOnce(): Promise<string> {
    let ended!: (reason: string) => void;
    const end = new Promise<string>((r) => { ended = r; });
    let over = false;
    this.abort = (reason) => { if (!over) { over = true; this.depose(reason); ended(reason); } };
    const lease = this.client.lease(this.ttl);
    const stopWatch = this.watchKeepalives(lease, (reason) => this.abort?.(reason));
    const watchers: Watcher[] = [];
    try {
      const untilEnd = <T>(p: Promise<T>): Promise<T> => Promise.race([p, end.then((r): never => { throw new Error(r); })]);
      const id = await untilEnd(lease.grant());
      const key = `${this.prefix}${id}`;
      const put = await untilEnd(this.client.kv.txn({
        compare: [{ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(this.opts.nodeId), lease: id } }],
        failure: [{ request_range: { key: Buffer.from(key) } }],
      }));
      const myRev = put.succeeded ? Number(put.header.revision) : Number(put.responses[0].response_range.kvs[0].create_revision);
      // our own key going away (lease expired or revoked elsewhere) ends everything
      const ownP = this.client.watch().key(key).startRevision(String(myRev + 1)).create();
      void ownP.then((w) => { watchers.push(w); if (over) void w.cancel().catch(() => {}); }, () => {});
      const own = await untilEnd(ownP);
      own.on('delete', () => this.abort?.('election key deleted (lease expired)'));
      // wait until no key older than ours is left
      for (;;) {
        if (over) return await end;
        const older = await untilEnd(this.client.kv.range({
          key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix),
          max_create_revision: myRev - 1, sort_target: 'Create', sort_order: 'Descend', limit: 1, keys_only: true,
        }));
        if (!older.kvs.length) break;
        const pred = older.kvs[0].key;
        const gone = new Promise<void>((r) => {
          void this.client.watch().key(pred).startRevision(String(Number(older.header.revision) + 1)).create().then((w) => {
            watchers.push(w);
            if (over) void w.cancel().catch(() => {});
            w.on('delete', () => r());
            w.on('error', () => r());
          }, () => r());
        });
        await Promise.race([gone, end]);
      }
      if (over) return await end;
      this.current = { key, createRevision: myRev };
      log.info({ nodeId: this.opts.nodeId, revision: myRev }, 'elected leader');
      try { this.opts.onElected(this.current); } catch (err) { this.abort?.(`onElected failed: ${errorMessage(err)}`); }
      return await end;
    } finally {
      over = true;
      stopWatch();
      for (const w of watchers) void w.cancel().catch(() => {});
      // free the key at once when we still can; a dead client lets it expire
      await Promise.race([lease.revoke({ deadline: Date.now() + 1_000 }).catch(() => {}), sleep(1_500)]);
    }
  }

  /** deposes when keepalives stop being confirmed: the local view of the lease deadline */
  private watchKeepalives(lease: Lease, fail: (reason: string) => void): () => void {
    const fired: number[] = [];
    let confirmedSend = Date.now();
    const marginMs = Math.min(500, (this.ttl * 1000) / 4);
    lease.on('keepaliveEstablished', () => { fired.length = 0; });
    lease.on('keepaliveFired', () => { fired.push(Date.now()); });
    lease.on('keepaliveSucceeded', () => {
      const sent = fired.shift();
      if (sent !== undefined) confirmedSend = Math.max(confirmedSend, sent);
    });
    lease.on('lost', (err) => fail(`lease lost: ${errorMessage(err)}`));
    const timer = setInterval(() => {
      if (Date.now() - confirmedSend > this.ttl * 1000 - marginMs) fail('lease keepalive not confirmed within the TTL');
    }, 100);
    return () => { clearInterval(timer); lease.removeAllListeners(); };
  }

  /** follows the election keys for leader() */
  private async observe(): Promise<void> {
    while (!this.stopped) {
      try {
        const res = await this.client.kv.range({ key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix) });
        this.candidates.clear();
        for (const kv of res.kvs) this.track(kv);
        if (!this.observer) {
          const w = await this.client.watch().prefix(this.prefix).startRevision(String(Number(res.header.revision) + 1)).create();
          if (this.stopped) { await w.cancel(); return; }
          this.observer = w;
          w.on('data', (d) => {
            for (const ev of d.events) {
              if (ev.type === 'Delete') this.candidates.delete(ev.kv.key.toString());
              else this.track(ev.kv);
            }
            this.changed();
          });
          w.on('disconnected', () => { this.observing = false; this.changed(); });
          w.on('connected', () => { if (!this.observing) void this.resync(); });
          w.on('error', () => { this.observer = undefined; this.observing = false; void this.observe(); });
        }
        this.observing = true;
        this.changed();
        return;
      } catch (err) {
        log.debug({ err: errorMessage(err) }, 'election observer: retrying');
        await sleep(500);
      }
    }
  }

  private async resync(): Promise<void> {
    try {
      const res = await this.client.kv.range({ key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix) });
      this.candidates.clear();
      for (const kv of res.kvs) this.track(kv);
      this.observing = true;
      this.changed();
    } catch { /* the next connect tries again */ }
  }

  private track(kv: IKeyValue): void {
    this.candidates.set(kv.key.toString(), { nodeId: kv.value.toString(), rev: Number(kv.create_revision) });
  }

  private changed(): void {
    const l = this.leader();
    if (l === this.lastLeader) return;
    this.lastLeader = l;
    try { this.opts.onLeaderChange?.(l); } catch { /* observer's fault */ }
  }
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
