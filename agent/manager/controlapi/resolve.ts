// Owns name resolution as dockerd does it (daemon/cluster/helpers.go): a full
// ID first, then an exact name (case-insensitive, as swarmkit's name index),
// then a unique ID prefix. Nothing found → 404; several → 400 "ambiguous".
import { invalid } from '../../common/errors.js';
import type { Network, Node, Service, Task } from '../../common/types.js';
import type { ReadView } from '../store/types.js';
import { kindNotFound } from './errors.js';

type Resolvable = 'services' | 'nodes' | 'tasks' | 'networks';
type ObjOf<K extends Resolvable> = K extends 'services' ? Service : K extends 'nodes' ? Node : K extends 'tasks' ? Task : Network;

const WORD: Record<Resolvable, string> = { services: 'service', nodes: 'node', tasks: 'task', networks: 'network' };

export function nodeName(n: Node): string {
  return n.Spec.Name || n.Description?.Hostname || '';
}

/** swarmkit's task name: <service>.<slot>.<id>, or <service>.<node>.<id> for global tasks */
export function taskName(view: ReadView, t: Task): string {
  if (t.Name) return t.Name;
  const svc = view.get('services', t.ServiceID);
  const base = svc?.Spec.Name ?? t.ServiceID;
  return `${base}.${t.Slot ? t.Slot : t.NodeID ?? ''}.${t.ID}`;
}

export function objectName<K extends Resolvable>(view: ReadView, kind: K, o: ObjOf<K>): string {
  switch (kind) {
    case 'services': return (o as Service).Spec.Name;
    case 'networks': return (o as Network).Spec.Name;
    case 'nodes': return nodeName(o as Node);
    default: return taskName(view, o as Task);
  }
}

/** every object whose ID, then name, then ID prefix equals input (dockerd's order) */
export function candidates<K extends Resolvable>(view: ReadView, kind: K, input: string): ObjOf<K>[] {
  if (!input) return [];
  const byId = view.get(kind, input) as ObjOf<K> | undefined;
  if (byId) return [byId];
  const lower = input.toLowerCase();
  const all = view.list(kind) as ObjOf<K>[];
  const named = all.filter((o) => objectName(view, kind, o).toLowerCase() === lower);
  if (named.length) return named;
  return all.filter((o) => o.ID.startsWith(input));
}

export function resolve<K extends Resolvable>(view: ReadView, kind: K, input: string): ObjOf<K> {
  const found = candidates(view, kind, input);
  if (found.length === 0) throw kindNotFound(WORD[kind], input);
  if (found.length > 1) throw invalid(`${WORD[kind]} ${input} is ambiguous (${found.length} matches found)`);
  return found[0]!;
}

/** like resolve, but undefined when nothing matches (ambiguity still throws) */
export function tryResolve<K extends Resolvable>(view: ReadView, kind: K, input: string): ObjOf<K> | undefined {
  const found = candidates(view, kind, input);
  if (found.length > 1) throw invalid(`${WORD[kind]} ${input} is ambiguous (${found.length} matches found)`);
  return found[0];
}
