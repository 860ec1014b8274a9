// Owns list filters as the Docker API sends them (`?filters=` JSON, either
// {"key":{"value":true}} or the legacy {"key":["value"]}) and the matching
// rules dockerd/swarmkit apply for services, nodes and tasks.
import { invalid } from '../../common/errors.js';
import { TASK_STATES, type Labels, type Node, type Service, type Task } from '../../common/types.js';
import type { ReadView } from '../store/types.js';
import { nodeName, resolve, taskName } from './resolve.js';

export type Filters = Map<string, string[]>;

export function parseFilters(raw: string | null | undefined): Filters {
  const out: Filters = new Map();
  if (!raw) return out;
  let parsed: unknown;
  try { parsed = JSON.parse(raw); } catch { throw invalid('invalid filter'); }
  if (parsed === null) return out;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid('invalid filter');
  for (const [key, val] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(val)) {
      if (!val.every((v) => typeof v === 'string')) throw invalid('invalid filter');
      out.set(key, val as string[]);
    } else if (val && typeof val === 'object') {
      out.set(key, Object.entries(val as Record<string, unknown>).filter(([, on]) => on === true).map(([v]) => v));
    } else if (val === null) {
      out.set(key, []);
    } else {
      throw invalid('invalid filter');
    }
  }
  return out;
}

function validate(f: Filters, accepted: string[]): void {
  for (const key of f.keys()) if (!accepted.includes(key)) throw invalid(`invalid filter '${key}'`);
}

const values = (f: Filters, key: string): string[] => f.get(key) ?? [];
const prefixAny = (s: string, prefixes: string[]) => prefixes.length === 0 || prefixes.some((p) => s.startsWith(p));

/** `label` filters: "k" requires the key, "k=v" the value too; all must hold */
export function matchLabels(labels: Labels | undefined, wanted: string[]): boolean {
  if (wanted.length === 0) return true;
  const have = labels ?? {};
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return Object.hasOwn(have, w);
    const k = w.slice(0, eq);
    const v = w.slice(eq + 1);
    return Object.hasOwn(have, k) && (v === '' || have[k] === v);
  });
}

export function serviceMode(s: Service): string {
  const m = s.Spec.Mode ?? {};
  if (m.Global) return 'global';
  if (m.ReplicatedJob) return 'replicated-job';
  if (m.GlobalJob) return 'global-job';
  return 'replicated';
}

export function serviceFilter(f: Filters): (s: Service) => boolean {
  validate(f, ['name', 'id', 'label', 'mode', 'runtime']);
  const names = values(f, 'name');
  const ids = values(f, 'id');
  const labels = values(f, 'label');
  const modes = values(f, 'mode');
  return (s) =>
    prefixAny(s.Spec.Name, names) &&
    prefixAny(s.ID, ids) &&
    matchLabels(s.Spec.Labels, labels) &&
    (modes.length === 0 || modes.includes(serviceMode(s)));
}

export function nodeFilter(f: Filters): (n: Node) => boolean {
  validate(f, ['name', 'id', 'label', 'role', 'membership', 'node.label']);
  const roles = values(f, 'role').filter((r) => r !== '').map((r) => r.toLowerCase());
  for (const r of roles) if (r !== 'worker' && r !== 'manager') throw invalid(`Invalid role filter: '${r}'`);
  const memberships = values(f, 'membership').filter((m) => m !== '').map((m) => m.toLowerCase());
  for (const m of memberships) if (m !== 'accepted' && m !== 'pending') throw invalid(`Invalid membership filter: '${m}'`);
  const names = values(f, 'name');
  const ids = values(f, 'id');
  const engineLabels = values(f, 'label');
  const nodeLabels = values(f, 'node.label');
  return (n) =>
    prefixAny(n.Description?.Hostname ?? nodeName(n), names) &&
    prefixAny(n.ID, ids) &&
    matchLabels(n.Description?.Engine?.Labels, engineLabels) &&
    matchLabels(n.Spec.Labels, nodeLabels) &&
    (roles.length === 0 || roles.includes(n.Spec.Role)) &&
    // every node in the store has been accepted (no pending-approval flow)
    (memberships.length === 0 || memberships.includes('accepted'));
}

/** task filters; `service` and `node` values are names, IDs or prefixes, resolved first (unknown → 404) */
export function taskFilter(view: ReadView, f: Filters): (t: Task) => boolean {
  validate(f, ['name', 'id', 'label', 'service', 'node', 'desired-state', '_up-to-date', 'runtime']);
  const states = values(f, 'desired-state').filter((s) => s !== '').map((s) => s.toLowerCase());
  for (const s of states) if (!(TASK_STATES as readonly string[]).includes(s)) throw invalid(`Invalid desired-state filter: '${s}'`);
  const services = new Set(values(f, 'service').map((s) => resolve(view, 'services', s).ID));
  const nodes = new Set(values(f, 'node').map((n) => resolve(view, 'nodes', n).ID));
  const names = values(f, 'name');
  const ids = values(f, 'id');
  const labels = values(f, 'label');
  const upToDate = f.has('_up-to-date') && values(f, '_up-to-date').length !== 0;
  return (t) => {
    if (services.size && !services.has(t.ServiceID)) return false;
    if (nodes.size && !(t.NodeID && nodes.has(t.NodeID))) return false;
    if (states.length && !states.includes(t.DesiredState)) return false;
    if (!prefixAny(t.ID, ids)) return false;
    if (names.length && !prefixAny(taskName(view, t), names)) return false;
    // swarmkit matches a task's label filter against its service's labels (ServiceAnnotations), as `stack ps` relies on
    if (labels.length && !matchLabels(t.ServiceAnnotations?.Labels ?? view.get('services', t.ServiceID)?.Spec.Labels, labels)) return false;
    if (upToDate) {
      const svc = view.get('services', t.ServiceID);
      if (!svc || (svc.SpecVersion ?? 0) !== (t.SpecVersion ?? 0)) return false;
    }
    return true;
  };
}
