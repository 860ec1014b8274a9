// Owns the swarm's event log for `docker events`: store changes to services,
// nodes, networks, secrets and configs become Docker-shaped events (scope
// swarm, old/new attributes for what changed), kept in a bounded ring for
// --since and pushed live to subscribers.
import type { Change, Store } from './store/types.js';

export interface SwarmEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'swarm';
  time: number;
  timeNano: number;
}

const TYPES: Partial<Record<string, string>> = { services: 'service', nodes: 'node', networks: 'network', secrets: 'secret', configs: 'config' };
export const SWARM_EVENT_TYPES = new Set(Object.values(TYPES) as string[]);
const RING = 1000;

type Attrs = Record<string, string>;

/** the attributes an event reports about an object, and those whose change is worth saying */
function describe(kind: string, o: Record<string, unknown>): { name: string; watched: Attrs } {
  const spec = (o.Spec ?? {}) as Record<string, unknown>;
  if (kind === 'nodes') {
    const desc = (o.Description ?? {}) as { Hostname?: string };
    const status = (o.Status ?? {}) as { State?: string };
    return { name: desc.Hostname ?? '', watched: { availability: String(spec.Availability ?? ''), role: String(spec.Role ?? ''), state: String(status.State ?? '') } };
  }
  if (kind === 'services') {
    const mode = spec.Mode as { Replicated?: { Replicas?: number } } | undefined;
    const us = o.UpdateStatus as { State?: string } | undefined;
    const watched: Attrs = {};
    if (mode?.Replicated) watched.replicas = String(mode.Replicated.Replicas ?? 1);
    const image = (spec.TaskTemplate as { ContainerSpec?: { Image?: string } } | undefined)?.ContainerSpec?.Image;
    if (image) watched.image = image;
    if (us?.State) watched.updatestate = us.State;
    return { name: String(spec.Name ?? ''), watched };
  }
  return { name: String(spec.Name ?? ''), watched: {} };
}

export class EventLog {
  private ring: SwarmEvent[] = [];
  private subscribers = new Set<(e: SwarmEvent) => void>();
  private last = new Map<string, Attrs>();
  private unwatch: () => void;

  constructor(store: Store) {
    for (const [kind, type] of Object.entries(TYPES)) {
      for (const o of store.list(kind as 'services')) this.last.set(`${type}/${o.ID}`, describe(kind, o as unknown as Record<string, unknown>).watched);
    }
    this.unwatch = store.watch((changes) => { for (const c of changes) this.onChange(c); });
  }

  close(): void {
    this.unwatch();
    this.subscribers.clear();
  }

  private onChange(c: Change): void {
    const type = TYPES[c.kind];
    if (!type) return;
    const key = `${type}/${c.object.ID}`;
    const { name, watched } = describe(c.kind, c.object as unknown as Record<string, unknown>);
    const Attributes: Attrs = { name };
    if (c.action === 'update') {
      const before = this.last.get(key) ?? {};
      let changed = false;
      for (const [k, v] of Object.entries(watched)) {
        if (before[k] !== undefined && before[k] !== v) {
          Attributes[`${k}.old`] = before[k];
          Attributes[`${k}.new`] = v;
          changed = true;
        }
      }
      // nodes change often (heartbeats, descriptions): only changes worth saying are events
      if (type === 'node' && !changed) { this.last.set(key, watched); return; }
    }
    if (c.action === 'remove') this.last.delete(key);
    else this.last.set(key, watched);
    const now = Date.now();
    const e: SwarmEvent = { Type: type, Action: c.action, Actor: { ID: c.object.ID, Attributes }, scope: 'swarm', time: Math.floor(now / 1000), timeNano: now * 1e6 };
    this.ring.push(e);
    if (this.ring.length > RING) this.ring.splice(0, this.ring.length - RING);
    for (const fn of this.subscribers) fn(e);
  }

  /** events already seen at or after `sinceMs` */
  past(sinceMs: number): SwarmEvent[] {
    return this.ring.filter((e) => e.timeNano / 1e6 >= sinceMs);
  }

  subscribe(fn: (e: SwarmEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}

const logs = new WeakMap<Store, EventLog>();

/** one event log per store, started on first use */
export function eventLog(store: Store): EventLog {
  let l = logs.get(store);
  if (!l) logs.set(store, (l = new EventLog(store)));
  return l;
}

/** Docker's event filters for swarm events: type, event, scope, and the object kinds by id or name */
export function matches(e: SwarmEvent, filters: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(filters)) {
    if (!values.length) continue;
    if (key === 'type' && !values.includes(e.Type)) return false;
    if (key === 'event' && !values.includes(e.Action)) return false;
    if (key === 'scope' && !values.includes('swarm')) return false;
    if (SWARM_EVENT_TYPES.has(key)) {
      if (e.Type !== key) return false;
      if (!values.some((v) => e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v)) return false;
    }
    if (['container', 'image', 'volume', 'plugin', 'daemon'].includes(key)) return false;
  }
  return true;
}
