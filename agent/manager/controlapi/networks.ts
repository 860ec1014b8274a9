// Owns swarm-scope (overlay) networks: create from Docker's NetworkCreate
// request (Spec, plus IPAMOptions when the user gave subnets; the allocator
// assigns the rest later), remove with swarmkit's in-use refusals, and the
// NetworkResource shape `docker network ls/inspect` expects.
import ipaddr from 'ipaddr.js';
import { ShoalError, conflict, invalid } from '../../common/errors.js';
import { newId } from '../../common/ids.js';
import type { Network, NetworkSpec } from '../../common/types.js';
import type { ReadView, Store } from '../store/types.js';
import { badSpec, precondition } from './errors.js';
import { matchLabels, type Filters } from './filters.js';
import { resolve } from './resolve.js';
import { validateName } from './validate.js';

export const PREDEFINED = ['bridge', 'host', 'none'];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strMap = (v: unknown) => v === undefined || v === null || (isObj(v) && Object.values(v).every((x) => typeof x === 'string'));

interface IpamConfigIn { Subnet?: string; IPRange?: string; Gateway?: string }

function parseCidr(s: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | undefined {
  try { return ipaddr.parseCIDR(s); } catch { return undefined; }
}

function checkIpam(c: IpamConfigIn): void {
  if (!c.Subnet) throw badSpec('ipam configuration: cannot be empty');
  const subnet = parseCidr(c.Subnet);
  if (!subnet) throw badSpec(`ipam configuration: invalid subnet ${c.Subnet}`);
  if (c.IPRange) {
    const range = parseCidr(c.IPRange);
    if (!range) throw badSpec(`ipam configuration: invalid range ${c.IPRange}`);
    if (range[0].kind() !== subnet[0].kind() || range[1] < subnet[1] || !range[0].match(subnet)) {
      throw badSpec(`ipam configuration: subnet ${c.Subnet} does not contain range ${c.IPRange}`);
    }
  }
  if (c.Gateway) {
    if (!ipaddr.isValid(c.Gateway)) throw badSpec(`ipam configuration: invalid gateway ${c.Gateway}`);
    const gw = ipaddr.parse(c.Gateway);
    if (gw.kind() !== subnet[0].kind() || !gw.match(subnet)) throw badSpec(`ipam configuration: subnet ${c.Subnet} does not contain gateway ${c.Gateway}`);
  }
}

/** Docker's NetworkCreateRequest → a swarm NetworkSpec (+ requested IPAM), or a 400/403 */
export function networkSpecFromCreate(body: unknown): { spec: NetworkSpec; ipam?: Network['IPAMOptions'] } {
  if (!isObj(body)) throw invalid('invalid JSON: body must be a NetworkCreate object');
  const b = body;
  if (typeof b.Name !== 'string') throw invalid('invalid JSON: Name must be a string');
  for (const f of ['Driver', 'Scope']) if (b[f] !== undefined && b[f] !== null && typeof b[f] !== 'string') throw invalid(`invalid JSON: ${f} must be a string`);
  for (const f of ['Internal', 'Attachable', 'Ingress', 'EnableIPv6', 'ConfigOnly', 'CheckDuplicate']) {
    if (b[f] !== undefined && b[f] !== null && typeof b[f] !== 'boolean') throw invalid(`invalid JSON: ${f} must be a boolean`);
  }
  if (!strMap(b.Options)) throw invalid('invalid JSON: Options must be an object of strings');
  if (!strMap(b.Labels)) throw invalid('invalid JSON: Labels must be an object of strings');
  if (b.IPAM !== undefined && b.IPAM !== null && !isObj(b.IPAM)) throw invalid('invalid JSON: IPAM must be an object');
  const ipamIn = (b.IPAM ?? undefined) as { Driver?: unknown; Options?: unknown; Config?: unknown } | undefined;
  if (ipamIn && ipamIn.Config !== undefined && ipamIn.Config !== null && !(Array.isArray(ipamIn.Config) && ipamIn.Config.every(isObj))) {
    throw invalid('invalid JSON: IPAM.Config must be an array of objects');
  }
  const configs = ((ipamIn?.Config ?? []) as Record<string, unknown>[]).map((c) => {
    for (const f of ['Subnet', 'IPRange', 'Gateway']) if (c[f] !== undefined && typeof c[f] !== 'string') throw invalid(`invalid JSON: IPAM.Config.${f} must be a string`);
    return c as IpamConfigIn;
  });
  if (PREDEFINED.includes(b.Name)) throw new ShoalError('forbidden', `${b.Name} is a pre-defined network and cannot be created`);
  if (b.Attachable && b.Ingress) throw badSpec('ingress network cannot be attachable');
  validateName(b.Name);
  for (const c of configs) checkIpam(c);

  const spec: NetworkSpec = { Name: b.Name, Labels: (b.Labels as Record<string, string> | null) ?? {} };
  spec.DriverConfiguration = { Name: (b.Driver as string) || 'overlay', ...(b.Options && Object.keys(b.Options).length ? { Options: b.Options as Record<string, string> } : {}) };
  if (b.EnableIPv6) spec.IPv6Enabled = true;
  if (b.Internal) spec.Internal = true;
  if (b.Attachable) spec.Attachable = true;
  if (b.Ingress) spec.Ingress = true;
  const ipamDriver = typeof ipamIn?.Driver === 'string' && ipamIn.Driver ? ipamIn.Driver : 'default';
  spec.IPAMOptions = { Driver: { Name: ipamDriver } };
  if (configs.length) spec.IPAMOptions.Configs = configs.map((c) => ({ Subnet: c.Subnet, ...(c.IPRange ? { Range: c.IPRange } : {}), ...(c.Gateway ? { Gateway: c.Gateway } : {}) }));
  spec.Scope = 'swarm';
  const ipam = configs.length
    ? { Driver: { Name: ipamDriver }, Configs: configs.map((c) => ({ Subnet: c.Subnet!, Gateway: c.Gateway ?? '' })) }
    : undefined;
  return { spec, ipam };
}

export async function createNetwork(store: Store, body: unknown): Promise<Network> {
  const { spec, ipam } = networkSpecFromCreate(body);
  const created = await store.update((tx) => {
    const lower = spec.Name.toLowerCase();
    if (tx.list('networks', (n) => n.Spec.Name.toLowerCase() === lower).length) throw conflict(`network with name ${spec.Name} already exists`);
    if (spec.Ingress) {
      const existing = tx.list('networks', (n) => !!n.Spec.Ingress)[0];
      if (existing) throw conflict(`rpc error: code = AlreadyExists desc = ingress network (${existing.ID}) is already present`);
    }
    const n: Network = { ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: spec };
    if (ipam) n.IPAMOptions = ipam;
    return tx.create('networks', n);
  });
  return structuredClone(store.get('networks', created.ID)!);
}

export function getNetwork(view: ReadView, input: string): Network {
  return structuredClone(resolve(view, 'networks', input));
}

export async function removeNetwork(store: Store, input: string): Promise<void> {
  await store.update((tx) => {
    const n = resolve(tx, 'networks', input);
    const users = tx.list('services', (s) =>
      [...(s.Spec.TaskTemplate.Networks ?? []), ...(s.Spec.Networks ?? [])].some((na) => na.Target === n.ID));
    if (n.Spec.Ingress) {
      const needing = tx.list('services', (s) => (s.Endpoint?.Ports ?? []).some((p) => (p.PublishMode ?? 'ingress') === 'ingress'));
      if (needing[0]) throw precondition(`ingress network cannot be removed because service ${needing[0].ID} depends on it`);
    }
    if (users[0]) throw precondition(`network ${n.ID} is in use by service ${users[0].ID}`);
    const task = tx.list('tasks', (t) => t.DesiredState !== 'shutdown' && t.DesiredState !== 'remove' &&
      (t.NetworksAttachments ?? []).some((a) => a.Network?.ID === n.ID))[0];
    if (task) throw precondition(`network ${n.ID} is in use by task ${task.ID}`);
    tx.remove('networks', n.ID);
  });
}

/** Docker's NetworkResource (what GET /networks returns) for a swarm network */
export function networkResource(n: Network): Record<string, unknown> {
  const configs = n.IPAMOptions?.Configs ?? [];
  return {
    Name: n.Spec.Name,
    Id: n.ID,
    Created: n.CreatedAt,
    Scope: 'swarm',
    Driver: n.DriverState?.Name ?? n.Spec.DriverConfiguration?.Name ?? 'overlay',
    EnableIPv6: !!n.Spec.IPv6Enabled,
    IPAM: {
      Driver: n.IPAMOptions?.Driver?.Name ?? n.Spec.IPAMOptions?.Driver?.Name ?? 'default',
      Options: null,
      Config: configs.map((c) => ({ Subnet: c.Subnet, ...(c.Gateway ? { Gateway: c.Gateway } : {}) })),
    },
    Internal: !!n.Spec.Internal,
    Attachable: !!n.Spec.Attachable,
    Ingress: !!n.Spec.Ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: null,
    Options: n.DriverState?.Options ?? n.Spec.DriverConfiguration?.Options ?? {},
    Labels: n.Spec.Labels ?? null,
  };
}

/** dockerd's network list filters, applied to swarm networks */
export function networkFilter(f: Filters): (n: Network) => boolean {
  for (const k of f.keys()) {
    if (!['name', 'id', 'driver', 'scope', 'type', 'label', 'dangling'].includes(k)) throw invalid(`invalid filter '${k}'`);
  }
  const get = (k: string) => f.get(k) ?? [];
  return (n) => {
    const r = networkResource(n);
    if (get('name').length && !get('name').some((v) => n.Spec.Name.includes(v))) return false;
    if (get('id').length && !get('id').some((v) => n.ID.startsWith(v))) return false;
    if (get('driver').length && !get('driver').includes(r.Driver as string)) return false;
    if (get('scope').length && !get('scope').includes('swarm')) return false;
    if (get('type').length && !get('type').includes('custom')) return false;
    return matchLabels(n.Spec.Labels, get('label'));
  };
}
