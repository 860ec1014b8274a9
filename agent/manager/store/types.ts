// Owns the store interface every backend implements: read views, transactions
// with compare-and-set on Version.Index, and a watch stream of changes.
import type { Kind, KindMap } from '../../common/types.js';

export type Action = 'create' | 'update' | 'remove';

export interface Change<K extends Kind = Kind> {
  kind: K;
  action: Action;
  object: KindMap[K];
  /** store revision after this change */
  revision: number;
}

export interface ReadView {
  get<K extends Kind>(kind: K, id: string): KindMap[K] | undefined;
  list<K extends Kind>(kind: K, filter?: (o: KindMap[K]) => boolean): KindMap[K][];
  /** objects of `kind` whose `field` index equals value (tasks by ServiceID / NodeID) */
  byIndex(kind: 'tasks', index: 'service' | 'node', value: string): KindMap['tasks'][];
}

export interface WriteTx extends ReadView {
  /** inserts; fails with conflict if the id exists. Sets Version/CreatedAt/UpdatedAt. */
  create<K extends Kind>(kind: K, obj: KindMap[K]): KindMap[K];
  /**
   * replaces; when `expectVersion` is given and differs from the stored
   * Version.Index the whole transaction fails with "update out of sequence".
   */
  update<K extends Kind>(kind: K, obj: KindMap[K], expectVersion?: number): KindMap[K];
  remove(kind: Kind, id: string): void;
}

export interface Store extends ReadView {
  readonly revision: number;
  /** runs fn atomically; its writes are durable before the promise resolves */
  update<T>(fn: (tx: WriteTx) => T): Promise<T>;
  /** every change committed after this call, in order, until the returned function is called */
  watch(fn: (changes: Change[]) => void): () => void;
  close(): Promise<void>;
}
