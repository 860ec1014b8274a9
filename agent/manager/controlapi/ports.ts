// Owns a service's published ports: defaults (tcp, ingress), dynamic ingress
// ports from 30000–32767 (kept across updates), and conflicts with other
// services, worded as swarmkit's checkPortConflicts, and ports shoal itself
// holds on every node (VXLAN, cluster management).
import { unavailable } from '../../common/errors.js';
import type { PortConfig, Service, ServiceSpec } from '../../common/types.js';
import type { ReadView } from '../store/types.js';
import { badSpec } from './errors.js';

export const DYNAMIC_PORT_MIN = 30000;
export const DYNAMIC_PORT_MAX = 32767;

const key = (p: PortConfig) => `${p.Protocol ?? 'tcp'}/${p.PublishedPort}`;

function withDefaults(p: PortConfig): PortConfig {
  const out: PortConfig = { ...(p.Name ? { Name: p.Name } : {}), Protocol: p.Protocol || 'tcp', TargetPort: p.TargetPort };
  if (p.PublishedPort) out.PublishedPort = p.PublishedPort;
  out.PublishMode = p.PublishMode || 'ingress';
  return out;
}

/** VXLAN data path: bound by the kernel on every node */
export const VXLAN_PORT = 4789;

/** ports shoal holds on nodes: VXLAN on all, cluster management on managers (their listen port) */
function systemPorts(view: ReadView): Map<string, string> {
  const out = new Map<string, string>([[`udp/${VXLAN_PORT}`, 'the overlay data path (VXLAN)']]);
  for (const n of view.list('nodes')) {
    const port = Number(/:(\d+)$/.exec(n.ManagerStatus?.Addr ?? '')?.[1]);
    if (port) out.set(`tcp/${port}`, 'cluster management on manager nodes');
  }
  return out;
}

/** fails when a published port of `spec` is taken by another service (selfId is skipped) or by shoal itself */
export function checkPortConflicts(view: ReadView, spec: ServiceSpec, selfId?: string): void {
  const ingress = new Set<string>();
  const host = new Set<string>();
  for (const p of spec.EndpointSpec?.Ports ?? []) {
    if (!p.PublishedPort) continue;
    ((p.PublishMode ?? 'ingress') === 'host' ? host : ingress).add(key(p));
  }
  if (!ingress.size && !host.size) return;
  const system = systemPorts(view);
  for (const k of [...ingress, ...host]) {
    const use = system.get(k);
    if (use !== undefined) throw badSpec(`port '${k.split('/')[1]}/${k.split('/')[0]}' is reserved: shoal uses it for ${use}`);
  }
  for (const s of view.list('services')) {
    if (s.ID === selfId) continue;
    for (const p of [...(s.Spec.EndpointSpec?.Ports ?? []), ...(s.Endpoint?.Ports ?? [])]) {
      if (!p.PublishedPort) continue;
      const k = key(p);
      if ((p.PublishMode ?? 'ingress') === 'host') {
        if (ingress.has(k)) throw badSpec(`port '${p.PublishedPort}' is already in use by service '${s.Spec.Name}' (${s.ID}) as a host-published port`);
      } else if (ingress.has(k) || host.has(k)) {
        throw badSpec(`port '${p.PublishedPort}' is already in use by service '${s.Spec.Name}' (${s.ID}) as an ingress port`);
      }
    }
  }
}

/** the Endpoint.Ports of a service with this spec; `previous` keeps earlier dynamic assignments */
export function resolvePorts(view: ReadView, spec: ServiceSpec, previous?: Service): PortConfig[] | undefined {
  const wanted = spec.EndpointSpec?.Ports;
  if (!wanted || wanted.length === 0) return undefined;
  const used = new Set<string>();
  for (const s of view.list('services')) {
    if (s.ID === previous?.ID) continue;
    for (const p of s.Endpoint?.Ports ?? []) if (p.PublishedPort) used.add(key(p));
  }
  for (const p of wanted) if (p.PublishedPort) used.add(key(p));
  const out: PortConfig[] = [];
  for (const raw of wanted) {
    const p = withDefaults(raw);
    if (!p.PublishedPort && p.PublishMode === 'ingress') {
      const kept = previous?.Endpoint?.Ports?.find(
        (o) => o.TargetPort === p.TargetPort && (o.Protocol ?? 'tcp') === p.Protocol && o.PublishMode === 'ingress' &&
          !previous.Spec.EndpointSpec?.Ports?.some((sp) => sp.PublishedPort === o.PublishedPort),
      );
      if (kept?.PublishedPort && !used.has(key(kept))) {
        p.PublishedPort = kept.PublishedPort;
      } else {
        let port = DYNAMIC_PORT_MIN;
        while (port <= DYNAMIC_PORT_MAX && used.has(`${p.Protocol}/${port}`)) port++;
        if (port > DYNAMIC_PORT_MAX) throw unavailable('no dynamic ports left in range 30000-32767');
        p.PublishedPort = port;
      }
      // keep Docker's field order: …, PublishedPort, PublishMode
      const mode = p.PublishMode;
      delete p.PublishMode;
      p.PublishMode = mode;
      used.add(key(p));
    }
    out.push(p);
  }
  return out;
}
