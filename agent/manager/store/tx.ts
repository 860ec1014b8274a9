// Owns a store transaction's semantics, shared by every backend: reads see
// the transaction's own writes, objects handed out are private copies,
// create/update/remove check existence, and `expectVersion` is compared with
// the stored Version.Index. Backends hook in where the stored state is read
// (`read`: the etcd store records what it saw) and where a version mismatches.
import { ShoalError, conflict, notFound, outOfSequence } from '../../common/errors.js';
import { nowIso } from '../../common/ids.js';
import type { Kind, KindMap, Task } from '../../common/types.js';
import type { ReadView, WriteTx } from './types.js';

export type PendingOp = { action: 'create' | 'update'; object: KindMap[Kind] } | { action: 'remove'; id: string };

export class StoreTx implements WriteTx {
  /** `${kind}/${id}` → the write this transaction makes */
  readonly pending = new Map<string, PendingOp>();

  /** `createVersion`: the Version.Index new objects carry until the commit assigns theirs */
  constructor(protected readonly view: ReadView, private readonly createVersion: number) {}

  /** the stored object (before this transaction's writes) */
  protected read(kind: Kind, id: string): KindMap[Kind] | undefined {
    return this.view.get(kind, id);
  }

  /** `expectVersion` differs from what is stored; `written`: this transaction already wrote the object */
  protected versionMismatch(_stored: KindMap[Kind], _expectVersion: number, _written: boolean): never {
    throw outOfSequence();
  }

  /** the object as this transaction sees it, shared (not copied) */
  private current(kind: Kind, id: string): { op?: PendingOp; obj?: KindMap[Kind] } {
    const op = this.pending.get(`${kind}/${id}`);
    if (op) return { op, obj: op.action === 'remove' ? undefined : op.object };
    return { obj: this.read(kind, id) };
  }

  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    const o = this.current(kind, id).obj;
    return o && (structuredClone(o) as KindMap[K]);
  }

  list<K extends Kind>(kind: K, filter?: (o: KindMap[K]) => boolean): KindMap[K][] {
    const seen = new Set<string>();
    const out: KindMap[K][] = [];
    for (const [key, op] of this.pending) {
      if (!key.startsWith(`${kind}/`)) continue;
      seen.add(key);
      if (op.action !== 'remove' && (!filter || filter(op.object as KindMap[K]))) out.push(structuredClone(op.object) as KindMap[K]);
    }
    for (const o of this.view.list(kind, filter)) if (!seen.has(`${kind}/${o.ID}`)) out.push(structuredClone(o));
    return out;
  }

  byIndex(kind: 'tasks', index: 'service' | 'node', value: string): Task[] {
    const field = index === 'service' ? 'ServiceID' : 'NodeID';
    return this.list(kind, (t) => t[field] === value);
  }

  create<K extends Kind>(kind: K, obj: KindMap[K]): KindMap[K] {
    if (!obj.ID) throw new ShoalError('internal', `create ${kind}: object without ID`);
    const { op, obj: existing } = this.current(kind, obj.ID);
    if (existing) throw conflict(`${kind} ${obj.ID} already exists`);
    const now = nowIso();
    const copy = structuredClone(obj);
    copy.CreatedAt ||= now;
    copy.UpdatedAt = now;
    copy.Version = { Index: this.createVersion };
    this.pending.set(`${kind}/${obj.ID}`, { action: op?.action === 'remove' ? 'update' : 'create', object: copy });
    return structuredClone(copy);
  }

  update<K extends Kind>(kind: K, obj: KindMap[K], expectVersion?: number): KindMap[K] {
    const { op, obj: stored } = this.current(kind, obj.ID);
    if (!stored) throw notFound(`${kind} ${obj.ID} not found`);
    if (expectVersion !== undefined && stored.Version.Index !== expectVersion) this.versionMismatch(stored, expectVersion, !!op);
    const copy = structuredClone(obj);
    copy.CreatedAt = stored.CreatedAt;
    copy.UpdatedAt = nowIso();
    copy.Version = { ...stored.Version };
    this.pending.set(`${kind}/${obj.ID}`, { action: op?.action === 'create' ? 'create' : 'update', object: copy });
    return structuredClone(copy);
  }

  remove(kind: Kind, id: string): void {
    const key = `${kind}/${id}`;
    const { op, obj } = this.current(kind, id);
    if (op?.action === 'create') { this.pending.delete(key); return; }
    if (!obj && op?.action !== 'remove') throw notFound(`${kind} ${id} not found`);
    this.pending.set(key, { action: 'remove', id });
  }
}
