// Owns the allocator's network arithmetic for one pass: VNI and subnet per
// overlay network, a VIP per service and network, an address per task and
// network, and each node's own address on the overlays it serves. The IPAM
// state is rebuilt from the store at start, so nothing extra is persisted.
import { Ipam, VniAllocator } from '../../../netd/ipam/index.js';
import { isTerminal } from '../../common/taskstate.js';
import type { Network, Node, Service, Task } from '../../common/types.js';
import type { ReadView, WriteTx } from '../store/types.js';

export const VXLAN_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

export function vniOf(n: Network): number | undefined {
  const v = n.DriverState?.Options?.[VXLAN_OPTION];
  return v ? Number(v) : undefined;
}

export function isAllocated(n: Network): boolean {
  return vniOf(n) !== undefined && !!n.IPAMOptions?.Configs?.[0]?.Subnet;
}

/** networks a service's tasks attach to: its own, plus ingress when it publishes ingress ports */
export function serviceNetworks(view: ReadView, svc: Service): string[] {
  const ids = (svc.Spec.TaskTemplate.Networks ?? svc.Spec.Networks ?? []).map((n) => n.Target);
  // any published port (host mode too) gives the tasks an ingress address the mesh can reach
  const publishes = (svc.Endpoint.Ports ?? svc.Spec.EndpointSpec?.Ports ?? []).some((p) => !!p.PublishedPort);
  if (publishes) {
    const ingress = view.list('networks', (n) => !!n.Spec.Ingress)[0];
    if (ingress && !ids.includes(ingress.ID)) ids.push(ingress.ID);
  }
  return ids;
}

export class NetworkAllocator {
  private ipam: Ipam;
  private vnis = new VniAllocator();
  /** addresses this allocator holds, by owner (task, vip or node id + network) */
  private held = new Map<string, { networkId: string; addr: string }[]>();

  constructor(view: ReadView, opts: { pools?: string[]; subnetSize?: number; reserved?: string[] }) {
    this.ipam = new Ipam(undefined, opts);
    for (const n of view.list('networks')) {
      if (!isAllocated(n)) continue;
      const c = n.IPAMOptions!.Configs[0];
      this.ipam.allocateSubnet(n.ID, { subnet: c.Subnet, gateway: c.Gateway });
      this.vnis.allocate(n.ID, vniOf(n));
    }
    for (const t of view.list('tasks')) {
      if (isTerminal(t.Status.State)) continue;
      this.restore(`task/${t.ID}`, (t.NetworksAttachments ?? []).flatMap((a) => a.Addresses.map((addr) => ({ networkId: a.Network.ID, addr }))));
    }
    for (const s of view.list('services')) this.restore(`vip/${s.ID}`, (s.Endpoint.VirtualIPs ?? []).map((v) => ({ networkId: v.NetworkID, addr: v.Addr })));
    for (const n of view.list('nodes')) this.restore(`node/${n.ID}`, (n.Attachments ?? []).map((a) => ({ networkId: a.NetworkID, addr: a.Addr })));
  }

  private restore(owner: string, list: { networkId: string; addr: string }[]): void {
    const kept: { networkId: string; addr: string }[] = [];
    for (const x of list) {
      try {
        this.ipam.allocateAddress(x.networkId, x.addr.split('/')[0]);
        kept.push(x);
      } catch { /* its network is gone */ }
    }
    if (kept.length) this.held.set(owner, kept);
  }

  private take(owner: string, networkId: string): string {
    const addr = this.ipam.cidrOf(networkId, this.ipam.allocateAddress(networkId));
    const list = this.held.get(owner) ?? [];
    list.push({ networkId, addr });
    this.held.set(owner, list);
    return addr;
  }

  release(owner: string): void {
    for (const x of this.held.get(owner) ?? []) {
      try { this.ipam.releaseAddress(x.networkId, x.addr.split('/')[0]); } catch { /* network gone */ }
    }
    this.held.delete(owner);
  }

  has(owner: string): boolean {
    return this.held.has(owner);
  }

  /** VNI and subnet for a new network; returns false when it was already allocated */
  allocateNetwork(tx: WriteTx, n: Network): boolean {
    if (isAllocated(n)) return false;
    const want = n.IPAMOptions?.Configs?.[0] ?? n.Spec.IPAMOptions?.Configs?.[0];
    const lease = this.ipam.allocateSubnet(n.ID, { subnet: want?.Subnet, gateway: want?.Gateway, range: want?.Range });
    const vni = this.vnis.allocate(n.ID);
    tx.update('networks', {
      ...n,
      DriverState: { Name: 'overlay', Options: { ...(n.DriverState?.Options ?? {}), [VXLAN_OPTION]: String(vni) } },
      IPAMOptions: { Driver: { Name: 'default' }, Configs: [{ Subnet: lease.subnet, Gateway: lease.gateway }] },
    });
    return true;
  }

  releaseNetwork(networkId: string): void {
    for (const [owner, list] of this.held) {
      const rest = list.filter((x) => x.networkId !== networkId);
      if (rest.length !== list.length) {
        if (rest.length) this.held.set(owner, rest);
        else this.held.delete(owner);
      }
    }
    this.ipam.releaseSubnet(networkId);
    this.vnis.release(networkId);
  }

  /** VIPs (endpoint mode vip) on every network of the service; true if written */
  allocateService(tx: WriteTx, svc: Service, networks: Network[]): boolean {
    const want = (svc.Spec.EndpointSpec?.Mode ?? 'vip') === 'vip' ? networks.map((n) => n.ID) : [];
    const have = svc.Endpoint.VirtualIPs ?? [];
    if (have.length === want.length && have.every((v) => want.includes(v.NetworkID))) return false;
    this.release(`vip/${svc.ID}`);
    const VirtualIPs = want.map((networkId) => ({ NetworkID: networkId, Addr: this.take(`vip/${svc.ID}`, networkId) }));
    tx.update('services', { ...svc, Endpoint: { ...svc.Endpoint, ...(VirtualIPs.length ? { VirtualIPs } : { VirtualIPs: undefined }) } });
    return true;
  }

  /** an address on each network for a new task */
  attachTask(t: Task, networks: Network[]): Task {
    this.release(`task/${t.ID}`);
    const NetworksAttachments = networks.map((n) => ({ Network: n, Addresses: [this.take(`task/${t.ID}`, n.ID)] }));
    return { ...t, NetworksAttachments };
  }

  /** the node's own address on each of these networks; undefined when nothing changes */
  attachNode(n: Node, networkIds: string[]): Node | undefined {
    const have = n.Attachments ?? [];
    const missing = networkIds.filter((id) => !have.some((a) => a.NetworkID === id));
    if (!missing.length) return undefined;
    const added = missing.map((id) => ({ NetworkID: id, Addr: this.take(`node/${n.ID}`, id) }));
    return { ...n, Attachments: [...have, ...added] };
  }
}
