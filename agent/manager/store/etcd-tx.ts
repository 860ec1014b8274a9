// Owns the etcd store's transaction: the same read-your-writes semantics as
// the in-memory store's (private copies, create/update/remove checks), plus
// the read set an etcd commit must guard. Every key the transaction read by
// id or wrote is recorded with the mod_revision it saw (0: absent), and the
// commit compares each of them, so a concurrent write to any of them makes
// the commit fail and the function run again on fresh state. Lists are not
// guarded (phantoms are possible across managers; see EtcdStore's header).
import { ShoalError, conflict, notFound, outOfSequence } from '../../common/errors.js';
import { nowIso } from '../../common/ids.js';
import type { Kind, KindMap, Task } from '../../common/types.js';
import type { ReadView, WriteTx } from './types.js';

export type EtcdOp = { action: 'create' | 'update'; object: KindMap[Kind] } | { action: 'remove'; id: string };

/** thrown inside a transaction when the mirror is older than what the caller already saw */
export class StaleMirror extends Error {
  constructor(readonly atLeast: number) { super(`store mirror is older than revision ${atLeast}`); }
}

export class EtcdTx implements WriteTx {
  /** `${kind}/${id}` → write */
  readonly pending = new Map<string, EtcdOp>();
  /** `${kind}/${id}` → mod_revision seen (0 = absent) */
  readonly seen = new Map<string, number>();

  constructor(private mirror: ReadView) {}

  private note(kind: Kind, id: string): KindMap[Kind] | undefined {
    const o = this.mirror.get(kind, id);
    const key = `${kind}/${id}`;
    if (!this.seen.has(key)) this.seen.set(key, o ? o.Version.Index : 0);
    return o;
  }

  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    const op = this.pending.get(`${kind}/${id}`);
    if (op) return op.action === 'remove' ? undefined : (structuredClone(op.object) as KindMap[K]);
    const o = this.note(kind, id) as KindMap[K] | undefined;
    return o && structuredClone(o);
  }

  list<K extends Kind>(kind: K, filter?: (o: KindMap[K]) => boolean): KindMap[K][] {
    const seen = new Set<string>();
    const out: KindMap[K][] = [];
    for (const [key, op] of this.pending) {
      if (!key.startsWith(`${kind}/`)) continue;
      seen.add(key);
      if (op.action !== 'remove' && (!filter || filter(op.object as KindMap[K]))) out.push(structuredClone(op.object) as KindMap[K]);
    }
    for (const o of this.mirror.list(kind, filter)) if (!seen.has(`${kind}/${o.ID}`)) out.push(structuredClone(o));
    return out;
  }

  byIndex(kind: 'tasks', index: 'service' | 'node', value: string): Task[] {
    const field = index === 'service' ? 'ServiceID' : 'NodeID';
    return this.list(kind, (t) => t[field] === value);
  }

  create<K extends Kind>(kind: K, obj: KindMap[K]): KindMap[K] {
    if (!obj.ID) throw new ShoalError('internal', `create ${kind}: object without ID`);
    const key = `${kind}/${obj.ID}`;
    const prev = this.pending.get(key);
    const stored = prev ? (prev.action === 'remove' ? undefined : prev.object) : this.note(kind, obj.ID);
    if (stored) throw conflict(`${kind} ${obj.ID} already exists`);
    const now = nowIso();
    const copy = structuredClone(obj);
    copy.CreatedAt ||= now;
    copy.UpdatedAt = now;
    copy.Version = { Index: 0 }; // the commit's revision, known once applied
    this.pending.set(key, { action: prev?.action === 'remove' ? 'update' : 'create', object: copy });
    return structuredClone(copy);
  }

  update<K extends Kind>(kind: K, obj: KindMap[K], expectVersion?: number): KindMap[K] {
    const key = `${kind}/${obj.ID}`;
    const current = this.pending.get(key);
    const stored = current ? (current.action === 'remove' ? undefined : current.object) : this.note(kind, obj.ID);
    if (!stored) throw notFound(`${kind} ${obj.ID} not found`);
    if (expectVersion !== undefined && stored.Version.Index !== expectVersion) {
      // the caller saw a newer version than this mirror has: catch up and run again
      if (!current && expectVersion > stored.Version.Index) throw new StaleMirror(expectVersion);
      throw outOfSequence();
    }
    const copy = structuredClone(obj);
    copy.CreatedAt = stored.CreatedAt;
    copy.UpdatedAt = nowIso();
    copy.Version = { ...stored.Version };
    this.pending.set(key, { action: current?.action === 'create' ? 'create' : 'update', object: copy });
    return structuredClone(copy);
  }

  remove(kind: Kind, id: string): void {
    const key = `${kind}/${id}`;
    const current = this.pending.get(key);
    if (current?.action === 'create') { this.pending.delete(key); return; }
    if (!current && !this.note(kind, id)) throw notFound(`${kind} ${id} not found`);
    this.pending.set(key, { action: 'remove', id });
  }
}
