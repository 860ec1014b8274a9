// Owns the in-memory store: objects by kind, task indexes, transactions with
// compare-and-set on Version.Index, revisions and the watch stream. Durable
// backends (embedded.ts) subclass it and persist each batch before it is
// acknowledged. Objects read outside a transaction are shared: read-only.
import type { Kind, KindMap, Task } from '../../common/types.js';
import type { Action, Change, ReadView, Store, WriteTx } from './types.js';
import { StoreTx } from './tx.js';

export const KINDS: Kind[] = ['cluster', 'nodes', 'services', 'tasks', 'networks', 'secrets', 'configs'];

type Table = Map<string, KindMap[Kind]>;

/** one object change as persisted: the object for create/update, the id for remove */
export interface Record_ { kind: Kind; action: Action; object?: KindMap[Kind]; id?: string }

export class MemoryStore implements Store {
  protected tables = new Map<Kind, Table>(KINDS.map((k) => [k, new Map()]));
  private taskIndex = { service: new Map<string, Set<string>>(), node: new Map<string, Set<string>>() };
  private watchers = new Set<(changes: Change[]) => void>();
  private _revision = 0;

  get revision(): number { return this._revision; }

  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined {
    return this.tables.get(kind)!.get(id) as KindMap[K] | undefined;
  }

  list<K extends Kind>(kind: K, filter?: (o: KindMap[K]) => boolean): KindMap[K][] {
    const out: KindMap[K][] = [];
    for (const o of this.tables.get(kind)!.values()) if (!filter || filter(o as KindMap[K])) out.push(o as KindMap[K]);
    return out;
  }

  byIndex(_kind: 'tasks', index: 'service' | 'node', value: string): Task[] {
    const ids = this.taskIndex[index].get(value);
    if (!ids) return [];
    const tasks = this.tables.get('tasks')!;
    return [...ids].map((id) => tasks.get(id) as Task);
  }

  async update<T>(fn: (tx: WriteTx) => T): Promise<T> {
    const tx = new StoreTx(this, this._revision + 1);
    const result = fn(tx);
    if (tx.pending.size === 0) return result;
    const changes = this.apply(tx);
    await this.persist(changes);
    this.notify(changes);
    return result;
  }

  watch(fn: (changes: Change[]) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  async close(): Promise<void> { this.watchers.clear(); }

  /** durable backends write the batch here; resolve only once it is on disk */
  protected async persist(_changes: Change[]): Promise<void> {}

  protected notify(changes: Change[]): void {
    for (const w of [...this.watchers]) {
      try { w(changes); } catch { /* a watcher's fault must not break the store */ }
    }
  }

  private apply(tx: StoreTx): Change[] {
    const changes: Change[] = [];
    for (const [key, op] of tx.pending) {
      const kind = key.slice(0, key.indexOf('/')) as Kind;
      const rev = ++this._revision;
      if (op.action === 'remove') {
        const old = this.tables.get(kind)!.get(op.id)!;
        this.rawRemove(kind, op.id);
        changes.push({ kind, action: 'remove', object: old, revision: rev });
      } else {
        const obj = op.object;
        obj.Version = { Index: rev };
        this.rawPut(kind, obj);
        changes.push({ kind, action: op.action, object: obj, revision: rev });
      }
    }
    return changes;
  }

  /** load-time and apply-time mutation, keeping indexes right */
  protected rawPut(kind: Kind, obj: KindMap[Kind]): void {
    const table = this.tables.get(kind)!;
    if (kind === 'tasks') {
      const old = table.get(obj.ID) as Task | undefined;
      if (old) this.unindex(old);
      this.index(obj as Task);
    }
    table.set(obj.ID, obj);
    if (obj.Version.Index > this._revision) this._revision = obj.Version.Index;
  }

  protected rawRemove(kind: Kind, id: string): void {
    const table = this.tables.get(kind)!;
    const old = table.get(id);
    if (old && kind === 'tasks') this.unindex(old as Task);
    table.delete(id);
  }

  protected setRevision(rev: number): void { this._revision = Math.max(this._revision, rev); }

  private index(t: Task): void {
    addTo(this.taskIndex.service, t.ServiceID, t.ID);
    if (t.NodeID) addTo(this.taskIndex.node, t.NodeID, t.ID);
  }

  private unindex(t: Task): void {
    this.taskIndex.service.get(t.ServiceID)?.delete(t.ID);
    if (t.NodeID) this.taskIndex.node.get(t.NodeID)?.delete(t.ID);
  }
}

function addTo(m: Map<string, Set<string>>, key: string, id: string): void {
  let s = m.get(key);
  if (!s) m.set(key, (s = new Set()));
  s.add(id);
}

/** read-only view over the store, for code that must not write */
export type { ReadView };
