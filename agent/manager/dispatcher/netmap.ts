// Owns building each node's network map from the store and pushing it when
// it changes: recomputed after relevant store changes (coalesced), sent to a
// node only when its map differs from the last one sent.
import { isTerminal } from '../../common/taskstate.js';
import type { NetMap, NetMapNetwork, NetMapTask } from '../../common/netmap.js';
import type { Store } from '../store/types.js';
import { isAllocated, vniOf } from '../allocator/networks.js';

/** pushes are coalesced at least this long, and at least twice as long as the last build took */
const COALESCE_MS = 20;

export function buildNetMap(store: Store, nodeId: string): NetMap {
  const node = store.get('nodes', nodeId);
  const networks: NetMapNetwork[] = [];
  for (const att of node?.Attachments ?? []) {
    const n = store.get('networks', att.NetworkID);
    if (!n || !isAllocated(n)) continue;
    const c = n.IPAMOptions!.Configs[0];
    networks.push({ id: n.ID, name: n.Spec.Name, vni: vniOf(n)!, subnet: c.Subnet, gateway: c.Gateway, nodeAddr: att.Addr, ingress: !!n.Spec.Ingress });
  }
  const served = new Set(networks.map((n) => n.id));
  const nodes: NetMap['nodes'] = {};
  for (const n of store.list('nodes')) {
    nodes[n.ID] = { addr: n.Status.Addr, attachments: (n.Attachments ?? []).filter((a) => served.has(a.NetworkID)).map((a) => ({ networkId: a.NetworkID, addr: a.Addr })) };
  }
  const tasks: NetMapTask[] = [];
  const serviceIds = new Set<string>();
  for (const t of store.list('tasks')) {
    if (!t.NodeID || isTerminal(t.Status.State) || t.Status.State === 'new' || t.Status.State === 'pending') continue;
    const atts = (t.NetworksAttachments ?? []).filter((a) => served.has(a.Network.ID));
    if (!atts.length) continue;
    serviceIds.add(t.ServiceID);
    tasks.push({
      ID: t.ID, ServiceID: t.ServiceID, Slot: t.Slot, NodeID: t.NodeID, DesiredState: t.DesiredState,
      Status: { State: t.Status.State },
      NetworksAttachments: atts.map((a) => ({ Network: { ID: a.Network.ID }, Addresses: a.Addresses })),
    });
  }
  const services = store.list('services', (s) => serviceIds.has(s.ID) || (s.Endpoint.VirtualIPs ?? []).some((v) => served.has(v.NetworkID)))
    .map((s) => ({ ID: s.ID, Spec: { Name: s.Spec.Name, Labels: s.Spec.Labels, EndpointSpec: s.Spec.EndpointSpec }, Endpoint: s.Endpoint }));
  return { networks, nodes, services, tasks };
}

export class NetMapPublisher {
  private subscribers = new Map<string, { fn: (m: NetMap) => void; last: string }[]>();
  private timer?: NodeJS.Timeout;
  private lastBuildMs = 0;
  private unwatch: () => void;

  constructor(private store: Store) {
    this.unwatch = store.watch((changes) => {
      if (changes.some((c) => c.kind !== 'cluster')) this.schedule();
    });
  }

  close(): void {
    this.unwatch();
    clearTimeout(this.timer);
    this.subscribers.clear();
  }

  subscribe(nodeId: string, fn: (m: NetMap) => void): () => void {
    const entry = { fn, last: '' };
    const list = this.subscribers.get(nodeId) ?? [];
    list.push(entry);
    this.subscribers.set(nodeId, list);
    this.send(nodeId, [entry]);
    return () => {
      const rest = (this.subscribers.get(nodeId) ?? []).filter((e) => e !== entry);
      if (rest.length) this.subscribers.set(nodeId, rest);
      else this.subscribers.delete(nodeId);
    };
  }

  private schedule(): void {
    if (this.timer || !this.subscribers.size) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const t0 = performance.now();
      for (const [nodeId, list] of this.subscribers) this.send(nodeId, list);
      this.lastBuildMs = performance.now() - t0;
    }, Math.max(COALESCE_MS, 2 * this.lastBuildMs));
  }

  private send(nodeId: string, list: { fn: (m: NetMap) => void; last: string }[]): void {
    const map = buildNetMap(this.store, nodeId);
    const text = JSON.stringify(map);
    for (const e of list) {
      if (e.last === text) continue;
      e.last = text;
      try { e.fn(map); } catch { /* a subscriber's fault stays its own */ }
    }
  }
}
