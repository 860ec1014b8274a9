// Owns turning cluster state (services, tasks, the ingress network) into the
// mesh's desired table. Pure: the agent calls meshTable() on every change and
// hands the result to Mesh.setServices(). Only tasks that run and are meant to
// keep running are backends, so a task leaves the set as soon as the
// orchestrator decides to stop it (drain before stop on rolling updates).

import type { Labels, PortConfig } from '../agent/common/types.js';
import type { NetMapService as Service, NetMapTask as Task } from '../agent/common/netmap.js';
import type { MeshMode, MeshPort, MeshService, ProxyProtocolVersion } from './types.js';

/** label names; the `shoal.lb.*` spelling from the issue is accepted too */
export const LABEL_MODE = ['shoal.mesh.mode', 'shoal.lb.mode'] as const;
export const LABEL_PROXY_PROTOCOL = ['shoal.mesh.proxy-protocol', 'shoal.lb.proxy-protocol'] as const;

function label(labels: Labels | undefined, names: readonly string[]): string | undefined {
  for (const n of names) if (labels?.[n] !== undefined) return labels[n];
  return undefined;
}

/** a message for the API to reject a service spec with, or undefined when the labels are fine */
export function validateMeshLabels(labels: Labels | undefined): string | undefined {
  const mode = label(labels, LABEL_MODE);
  if (mode !== undefined && mode !== 'tcp' && mode !== 'http') return `label ${LABEL_MODE[0]} must be tcp or http, not "${mode}"`;
  const pp = label(labels, LABEL_PROXY_PROTOCOL);
  if (pp !== undefined && pp !== 'v1' && pp !== 'v2') return `label ${LABEL_PROXY_PROTOCOL[0]} must be v1 or v2, not "${pp}"`;
  if (pp !== undefined && mode === 'http') return `label ${LABEL_PROXY_PROTOCOL[0]} applies to TCP mode only`;
  return undefined;
}

export interface MeshTableOptions {
  /** ID of the ingress network: backends are task addresses on it */
  ingressNetworkId: string;
  /** this node: host-mode ports are published only when a task runs here, to those tasks */
  nodeId?: string;
}

function meshPorts(svc: Service, publishMode: 'ingress' | 'host'): MeshPort[] {
  const ports: PortConfig[] = svc.Endpoint?.Ports ?? svc.Spec.EndpointSpec?.Ports ?? [];
  const labels = svc.Spec.Labels;
  const m = label(labels, LABEL_MODE);
  const mode: MeshMode = m === 'http' ? 'http' : 'tcp';
  const pp = label(labels, LABEL_PROXY_PROTOCOL);
  const proxyProtocol: ProxyProtocolVersion | undefined = pp === 'v1' || pp === 'v2' ? pp : undefined;
  const out: MeshPort[] = [];
  for (const p of ports) {
    if ((p.PublishMode ?? 'ingress') !== publishMode || !p.PublishedPort) continue;
    const protocol = p.Protocol ?? 'tcp';
    if (protocol === 'sctp') continue;
    const mp: MeshPort = { protocol, publishedPort: p.PublishedPort, targetPort: p.TargetPort, mode: protocol === 'udp' ? 'tcp' : mode };
    if (protocol === 'tcp' && mode === 'tcp' && proxyProtocol !== undefined) mp.proxyProtocol = proxyProtocol;
    out.push(mp);
  }
  return out;
}

function taskAddr(task: Task, networkId: string, anyNetwork: boolean): string | undefined {
  const atts = task.NetworksAttachments ?? [];
  const att = atts.find((a) => a.Network?.ID === networkId) ?? (anyNetwork ? atts[0] : undefined);
  const cidr = att?.Addresses?.[0];
  return cidr === undefined ? undefined : cidr.split('/')[0];
}

const serving = (t: Task) => t.Status?.State === 'running' && t.DesiredState === 'running';

export function meshTable(services: readonly Service[], tasks: readonly Task[], opts: MeshTableOptions): MeshService[] {
  const byService = new Map<string, Task[]>();
  for (const t of tasks) {
    if (!serving(t)) continue;
    let l = byService.get(t.ServiceID);
    if (l === undefined) byService.set(t.ServiceID, (l = []));
    l.push(t);
  }
  const table: MeshService[] = [];
  for (const svc of services) {
    const running = byService.get(svc.ID) ?? [];
    // host mode: the task's ingress address if it has one, else its first network address
    const backends = (ts: Task[], anyNetwork = false) =>
      ts.flatMap((t) => {
        const addr = taskAddr(t, opts.ingressNetworkId, anyNetwork);
        return addr === undefined ? [] : [{ addr, healthy: true }];
      });
    const ingress = meshPorts(svc, 'ingress');
    if (ingress.length > 0) table.push({ serviceId: svc.ID, name: svc.Spec.Name, ports: ingress, backends: backends(running) });
    if (opts.nodeId !== undefined) {
      const local = running.filter((t) => t.NodeID === opts.nodeId);
      const host = meshPorts(svc, 'host');
      if (host.length > 0 && local.length > 0) table.push({ serviceId: svc.ID, name: svc.Spec.Name, ports: host, backends: backends(local, true) });
    }
  }
  return table;
}
