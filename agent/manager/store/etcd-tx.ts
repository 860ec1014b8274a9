// Owns the etcd store's transaction: the shared transaction semantics
// (tx.ts) plus the read set an etcd commit must guard. Every key the
// transaction read by id or wrote is recorded with the mod_revision it saw
// (0: absent), and the commit compares each of them, so a concurrent write to
// any of them makes the commit fail and the function run again on fresh
// state. Lists are not guarded (phantoms are possible across managers; see
// EtcdStore's header).
import type { Kind, KindMap } from '../../common/types.js';
import type { ReadView } from './types.js';
import { StoreTx, type PendingOp } from './tx.js';

export type EtcdOp = PendingOp;

/** thrown inside a transaction when the mirror is older than what the caller already saw */
export class StaleMirror extends Error {
  constructor(readonly atLeast: number) { super(`store mirror is older than revision ${atLeast}`); }
}

export class EtcdTx extends StoreTx {
  /** `${kind}/${id}` → mod_revision seen (0 = absent) */
  readonly seen = new Map<string, number>();

  constructor(mirror: ReadView) {
    super(mirror, 0); // new objects get the commit's revision once applied
  }

  protected override read(kind: Kind, id: string): KindMap[Kind] | undefined {
    const o = this.view.get(kind, id);
    const key = `${kind}/${id}`;
    if (!this.seen.has(key)) this.seen.set(key, o ? o.Version.Index : 0);
    return o;
  }

  /** the caller saw a newer version than this mirror has: catch up and run again */
  protected override versionMismatch(stored: KindMap[Kind], expectVersion: number, written: boolean): never {
    if (!written && expectVersion > stored.Version.Index) throw new StaleMirror(expectVersion);
    return super.versionMismatch(stored, expectVersion, written);
  }
}
