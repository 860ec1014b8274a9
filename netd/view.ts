// Owns the pure reading of a node's network map: VXLAN peers per network,
// DNS records per network, VIP rules for a container, and the mesh's view.
import type { NetMap, NetMapTask } from '../agent/common/netmap.js';
import { macFromIPv4 } from './ipam/index.js';
import type { NetworkRecords } from './dns/index.js';
import type { Peer } from './overlay/driver.js';
import type { VipRule } from './vip/rules.js';

const bare = (cidr: string) => cidr.split('/')[0];

/** a task that may receive traffic: running and meant to keep running */
export const serving = (t: NetMapTask) => t.Status.State === 'running' && t.DesiredState === 'running';

function addrOn(t: NetMapTask, networkId: string): string | undefined {
  const a = t.NetworksAttachments?.find((x) => x.Network.ID === networkId)?.Addresses[0];
  return a && bare(a);
}

/** remote endpoints of a network: other nodes' tasks and the other nodes' own addresses */
export function peersOf(map: NetMap, networkId: string, selfNodeId: string): Peer[] {
  const out = new Map<string, Peer>();
  for (const t of map.tasks) {
    if (!t.NodeID || t.NodeID === selfNodeId) continue;
    const addr = addrOn(t, networkId);
    const host = map.nodes[t.NodeID]?.addr;
    if (addr && host) out.set(addr, { addr, mac: macFromIPv4(addr), host });
  }
  for (const [nodeId, n] of Object.entries(map.nodes)) {
    if (nodeId === selfNodeId) continue;
    for (const a of n.attachments) {
      if (a.networkId !== networkId) continue;
      const addr = bare(a.addr);
      out.set(addr, { addr, mac: macFromIPv4(addr), host: n.addr });
    }
  }
  return [...out.values()];
}

/** service names, task names and VIPs a network's clients can resolve */
export function recordsOf(map: NetMap, networkId: string): NetworkRecords {
  const net = map.networks.find((n) => n.id === networkId)!;
  const byService = new Map<string, NetMapTask[]>();
  for (const t of map.tasks) {
    if (!serving(t) || !addrOn(t, networkId)) continue;
    const list = byService.get(t.ServiceID) ?? [];
    list.push(t);
    byService.set(t.ServiceID, list);
  }
  const services: NetworkRecords['services'] = [];
  const tasks: NetworkRecords['tasks'] = [];
  for (const s of map.services) {
    const vip = s.Endpoint.VirtualIPs?.find((v) => v.NetworkID === networkId);
    const running = byService.get(s.ID) ?? [];
    if (!vip && !running.length) continue;
    services.push({
      name: s.Spec.Name,
      vip: vip && bare(vip.Addr),
      taskAddrs: running.map((t) => addrOn(t, networkId)!),
      endpointMode: s.Spec.EndpointSpec?.Mode ?? 'vip',
    });
    for (const t of running) tasks.push({ name: `${s.Spec.Name}.${t.Slot ?? t.NodeID}.${t.ID}`, addr: addrOn(t, networkId)! });
  }
  return { subnet: net.subnet, name: net.name, services, tasks };
}

/** VIP → running backends for every service on the given networks */
export function vipRulesFor(map: NetMap, networkIds: string[]): VipRule[] {
  const rules: VipRule[] = [];
  for (const s of map.services) {
    if ((s.Spec.EndpointSpec?.Mode ?? 'vip') !== 'vip') continue;
    for (const v of s.Endpoint.VirtualIPs ?? []) {
      if (!networkIds.includes(v.NetworkID)) continue;
      const ingress = map.networks.find((n) => n.id === v.NetworkID)?.ingress;
      if (ingress) continue; // the ingress VIP is the mesh's business
      const backends = map.tasks.filter((t) => t.ServiceID === s.ID && serving(t)).map((t) => addrOn(t, v.NetworkID)).filter((a): a is string => !!a);
      rules.push({ vip: bare(v.Addr), backends });
    }
  }
  return rules;
}
