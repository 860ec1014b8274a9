// Owns what the leader keeps true about the managers while it leads: the
// Leader flag (itself true, every other manager false), each manager's
// Reachability from etcd member health (refreshed every REFRESH_MS), and the
// etcd half of a demotion (a node whose Spec.Role went to worker loses its
// member when the quorum allows, then its ManagerStatus). It also guards the
// API's demotions: a store view whose transactions refuse to demote a manager
// when the remaining members would not form a quorum (swarmkit's check,
// with its words), and promotions: the leader adds the promoted worker's etcd
// member and sends it, over its session, a manager certificate and the
// member's start-up; a promotion that does not come up in time is undone.
// Writes go through the term's (fenced) store.
import { errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import type { Node } from '../../common/types.js';
import { precondition } from '../controlapi/errors.js';
import type { Store, WriteTx } from '../store/types.js';
import type { MemberStatus } from './etcd-cluster.js';
import type { EtcdPlane } from './plane.js';
import { canRemoveMember, DEMOTE_LOSES_QUORUM } from './quorum.js';
import { issueNodeCert, type RootCA } from '../ca/ca.js';
import type { LogBroker } from '../logs/broker.js';

const log = logger('roles');
export const REFRESH_MS = 2_000;
/** a promoted worker whose member is not healthy by then is set back to worker */
export const PROMOTE_TIMEOUT_MS = 60_000;

/** keeps manager status right for one term; stop() ends it */
export class ManagerRoles {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** promotions under way: node id → when its member was added */
  private promoting = new Map<string, number>();

  /** `sessions`: where this manager's worker sessions are (the promoted node is told over its own) */
  constructor(private store: Store, private plane: EtcdPlane, private selfId: string, private ca: RootCA, private sessions: LogBroker) {}

  start(): void {
    const tick = () => {
      void this.refresh().catch((err) => log.debug({ err: errorMessage(err) }, 'manager status refresh failed')).finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, REFRESH_MS);
        this.timer.unref?.();
      });
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async refresh(): Promise<void> {
    // the flag first: it needs no member list
    await this.writeStatus(undefined);
    if (this.stopped) return;
    if (!this.plane.agentManaged) return this.writeStatus(undefined);
    const members = await this.plane.members();
    if (this.stopped) return;
    await this.demotions(members);
    await this.promotions(members);
    await this.writeStatus(members);
  }

  /** workers whose role became manager: add their member, hand them what a joining manager gets */
  private async promotions(members: MemberStatus[]): Promise<void> {
    const promoted = this.store.list('nodes', (n) => n.Spec.Role === 'manager' && n.ID !== this.selfId && (!n.ManagerStatus || this.promoting.has(n.ID)));
    for (const n of promoted) {
      if (this.stopped) return;
      const started = this.promoting.get(n.ID);
      if (started !== undefined) {
        if (members.find((m) => m.name === n.ID)?.healthy) { this.promoting.delete(n.ID); log.info({ nodeId: n.ID }, 'promotion done'); }
        else if (Date.now() - started > PROMOTE_TIMEOUT_MS) await this.undoPromotion(n.ID, 'the promoted node did not start its etcd member in time');
        continue;
      }
      if (n.Status.State !== 'ready' || !this.sessions.hasSession(n.ID)) continue; // it must be here to be told
      const etcd = await this.plane.addManager(n.ID, n.Status.Addr);
      if (!etcd) continue;
      this.promoting.set(n.ID, Date.now());
      const cluster = this.store.list('cluster')[0];
      const cert = await issueNodeCert(this.ca, n.ID, 'manager', cluster?.ID ?? '');
      await this.store.update((tx) => {
        const cur = tx.get('nodes', n.ID);
        if (cur && !cur.ManagerStatus) tx.update('nodes', { ...cur, ManagerStatus: { Leader: false, Reachability: 'unknown', Addr: `${n.Status.Addr}:2377` } });
      });
      if (!this.sessions.send(n.ID, { type: 'promote', certPem: cert.certPem, keyPem: cert.keyPem, etcd })) {
        await this.undoPromotion(n.ID, 'the node left before it could be promoted');
      } else log.info({ nodeId: n.ID }, 'promoting a worker: etcd member added, manager certificate sent');
    }
  }

  private async undoPromotion(nodeId: string, why: string): Promise<void> {
    this.promoting.delete(nodeId);
    await this.plane.removeManager(nodeId).catch(() => false);
    await this.store.update((tx) => {
      const cur = tx.get('nodes', nodeId);
      if (!cur) return;
      const { ManagerStatus: _gone, ...rest } = cur;
      tx.update('nodes', { ...(rest as Node), Spec: { ...cur.Spec, Role: 'worker' }, Status: { ...cur.Status, Message: `promotion undone: ${why}` } });
    });
    log.warn({ nodeId, why }, 'promotion undone');
  }

  private async writeStatus(members: MemberStatus[] | undefined): Promise<void> {
    const health = new Map(members?.map((m) => [m.name, m.healthy && m.clientURLs.length > 0]));
    const want = (n: Node): Node['ManagerStatus'] => {
      const ms = n.ManagerStatus!;
      const leader = n.ID === this.selfId;
      let reach = ms.Reachability;
      if (leader) reach = 'reachable';
      else if (members) reach = health.get(n.ID) ? 'reachable' : 'unreachable';
      // an external etcd has no members of ours: a manager is reachable when its node is
      else if (!this.plane.agentManaged) reach = n.Status.State === 'ready' ? 'reachable' : 'unreachable';
      return { ...ms, Leader: leader, Reachability: reach };
    };
    const stale = this.store.list('nodes', (n) => {
      if (!n.ManagerStatus) return false;
      const w = want(n)!;
      return !!n.ManagerStatus.Leader !== w.Leader || n.ManagerStatus.Reachability !== w.Reachability;
    });
    if (!stale.length || this.stopped) return;
    await this.store.update((tx) => {
      for (const s of stale) {
        const n = tx.get('nodes', s.ID);
        if (n?.ManagerStatus) tx.update('nodes', { ...n, ManagerStatus: want(n) });
      }
    });
  }

  /** demoted managers: remove their member (never our own: the demoted leader resigns first), then their ManagerStatus */
  private async demotions(members: MemberStatus[]): Promise<void> {
    const demoted = this.store.list('nodes', (n) => n.Spec.Role === 'worker' && !!n.ManagerStatus && n.ID !== this.selfId);
    for (const n of demoted) {
      const m = members.find((x) => x.name === n.ID);
      if (m) {
        if (!canRemoveMember(members, m.id)) {
          log.warn({ nodeId: n.ID }, 'demotion waits: removing the member now would lose the quorum');
          continue;
        }
        await this.plane.removeManager(n.ID);
      }
      if (this.stopped) return;
      await this.store.update((tx) => {
        const cur = tx.get('nodes', n.ID);
        if (cur && cur.Spec.Role === 'worker' && cur.ManagerStatus) {
          const { ManagerStatus: _gone, ...rest } = cur;
          tx.update('nodes', rest as Node);
        }
      });
      log.info({ nodeId: n.ID }, 'manager demoted: etcd member removed');
    }
  }
}

class NeedMembers extends Error {}

/** the API's view of the store: demoting a manager must keep the etcd quorum */
export function quorumGuard(store: Store, plane: EtcdPlane): Store {
  const guardTx = (tx: WriteTx, members: MemberStatus[] | undefined): WriteTx => new Proxy(tx, {
    get(target, prop, receiver) {
      if (prop !== 'update') return Reflect.get(target, prop, receiver);
      return (kind: string, obj: Node, expect?: number) => {
        if (kind === 'nodes') {
          const old = target.get('nodes', obj.ID);
          if (old?.Spec.Role === 'manager' && obj.Spec?.Role === 'worker' && old.ManagerStatus) {
            if (!members) throw new NeedMembers();
            const m = members.find((x) => x.name === obj.ID);
            if (m && !canRemoveMember(members, m.id)) throw precondition(DEMOTE_LOSES_QUORUM);
          }
        }
        return (target.update as (k: string, o: unknown, e?: number) => unknown)(kind, obj, expect);
      };
    },
  });
  const view: Store = {
    get revision() { return store.revision; },
    get: (k, id) => store.get(k, id),
    list: (k, f) => store.list(k, f),
    byIndex: (k, i, v) => store.byIndex(k, i, v),
    watch: (fn) => store.watch(fn),
    close: () => store.close(),
    update: async (fn) => {
      let members: MemberStatus[] | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          return await store.update((tx) => fn(guardTx(tx, members)));
        } catch (err) {
          if (!(err instanceof NeedMembers) || attempt > 0) throw err;
          members = await plane.members();
        }
      }
    },
  };
  return view;
}
