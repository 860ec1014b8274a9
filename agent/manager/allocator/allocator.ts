// Owns resource allocation between orchestration and scheduling: overlay
// networks get a VNI and subnet, services a VIP per network, nodes their own
// address on the overlays they serve, and each task an address per network.
// A task is created `new`; once allocated it becomes `pending` for the
// scheduler. Addresses of finished or deleted tasks go back to the pool.
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { nowIso } from '../../common/ids.js';
import { logger } from '../../common/log.js';
import { isTerminal } from '../../common/taskstate.js';
import type { Network } from '../../common/types.js';
import type { Change, Store, WriteTx } from '../store/types.js';
import { NetworkAllocator, isAllocated, serviceNetworks } from './networks.js';

const log = logger('allocator');

/** subnets of this host's own interfaces: never handed to overlays */
function hostSubnets(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4' && !a.internal && a.cidr) out.push(`${ipaddr.IPv4.networkAddressFromCIDR(a.cidr).toString()}/${a.cidr.split('/')[1]}`);
    }
  }
  return out;
}

export class Allocator {
  private unwatch?: () => void;
  private queued = false;
  private busy = false;
  private nets?: NetworkAllocator;

  constructor(private store: Store) {}

  start(): void {
    this.unwatch = this.store.watch((cs) => this.onChanges(cs));
    this.kick();
  }

  stop(): void {
    this.unwatch?.();
  }

  private onChanges(changes: Change[]): void {
    let interesting = false;
    for (const c of changes) {
      if (c.kind === 'tasks') {
        const t = c.object as { ID: string; Status: { State: string }; NodeID?: string };
        if (c.action === 'remove') this.nets?.release(`task/${t.ID}`);
        else if (t.Status.State === 'new' || t.Status.State === 'assigned' || isTerminal(t.Status.State as 'new')) interesting = true;
      } else if (c.kind === 'networks') {
        if (c.action === 'remove') this.nets?.releaseNetwork(c.object.ID);
        interesting = true;
      } else if (c.kind === 'services') {
        if (c.action === 'remove') this.nets?.release(`vip/${c.object.ID}`);
        else interesting = true;
      } else if (c.kind === 'nodes') {
        if (c.action === 'remove') this.nets?.release(`node/${c.object.ID}`);
        else if (c.action === 'create') interesting = true;
      }
    }
    if (interesting) this.kick();
  }

  private kick(): void {
    if (this.queued) return;
    this.queued = true;
    setImmediate(() => { this.queued = false; void this.run(); });
  }

  private async run(): Promise<void> {
    if (this.busy) { this.kick(); return; }
    this.busy = true;
    try {
      if (!this.nets) {
        const cluster = this.store.list('cluster')[0];
        // this host's own overlay bridges carry subnets allocated before (a new leader, a restart): those are ours, not reserved
        const ours = new Set(this.store.list('networks').flatMap((n) => n.IPAMOptions?.Configs?.map((c) => c.Subnet) ?? []));
        const reserved = hostSubnets().filter((s) => !ours.has(s));
        this.nets = new NetworkAllocator(this.store, { pools: cluster?.DefaultAddrPool ?? undefined, subnetSize: cluster?.SubnetSize, reserved });
      }
      await this.store.update((tx) => this.pass(tx, this.nets!));
    } catch (err) {
      log.error({ err }, 'allocation failed');
    } finally {
      this.busy = false;
    }
  }

  private pass(tx: WriteTx, nets: NetworkAllocator): void {
    const networks = new Map<string, Network>();
    for (const n of this.store.list('networks')) {
      if (!isAllocated(n)) {
        try {
          nets.allocateNetwork(tx, n);
        } catch (err) {
          log.error({ err, network: n.Spec.Name }, 'network allocation failed');
          continue;
        }
      }
      networks.set(n.ID, tx.get('networks', n.ID)!);
    }
    const netsOf = (ids: string[]) => ids.map((id) => networks.get(id)).filter((n): n is Network => !!n && isAllocated(n));

    for (const s of this.store.list('services')) {
      const ids = serviceNetworks(this.store, s);
      const list = netsOf(ids);
      if (list.length === ids.length) nets.allocateService(tx, tx.get('services', s.ID)!, list);
    }

    const nodeNets = new Map<string, Set<string>>();
    const ingress = [...networks.values()].find((n) => n.Spec.Ingress && isAllocated(n));
    for (const n of this.store.list('nodes')) nodeNets.set(n.ID, new Set(ingress ? [ingress.ID] : []));

    for (const t of this.store.list('tasks')) {
      if (isTerminal(t.Status.State)) {
        if (nets.has(`task/${t.ID}`)) nets.release(`task/${t.ID}`);
        continue;
      }
      if (t.Status.State === 'new') {
        if (t.DesiredState !== 'running') continue;
        const svc = this.store.get('services', t.ServiceID);
        const ids = svc ? serviceNetworks(this.store, svc) : [];
        const list = netsOf(ids);
        if (list.length !== ids.length) continue; // a network is not allocated yet
        try {
          const attached = list.length ? nets.attachTask(t, list) : t;
          tx.update('tasks', { ...attached, Status: { ...t.Status, State: 'pending', Message: 'pending task scheduling', Timestamp: nowIso() } });
        } catch (err) {
          const msg = `could not allocate an address: ${(err as Error).message}`;
          if (t.Status.Err !== msg) tx.update('tasks', { ...t, Status: { ...t.Status, Err: msg, Timestamp: nowIso() } });
        }
        continue;
      }
      if (t.NodeID) for (const a of t.NetworksAttachments ?? []) nodeNets.get(t.NodeID)?.add(a.Network.ID);
    }

    for (const [nodeId, ids] of nodeNets) {
      const node = this.store.get('nodes', nodeId)!;
      try {
        const next = nets.attachNode(node, [...ids].filter((id) => networks.has(id)));
        if (next) tx.update('nodes', { ...tx.get('nodes', nodeId)!, Attachments: next.Attachments });
      } catch (err) {
        log.error({ err, nodeId }, 'node address allocation failed');
      }
    }
  }
}
