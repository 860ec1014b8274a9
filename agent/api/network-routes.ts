// Owns /networks: swarm-scope overlay networks come from the store, local
// networks from dockerd; lists merge both in Docker's NetworkResource shape,
// and anything not swarm-scoped is forwarded to dockerd unchanged.
import { conflict, errorMessage, invalid, notFound } from '../common/errors.js';
import type { Store } from '../manager/store/types.js';
import {
  createNetwork, networkFilter, networkResource, parseFilters, removeNetwork, tryResolve,
} from '../manager/controlapi/index.js';
import { type Ctx, type Route, route } from './context.js';
import { HttpError, readBody, sendEmpty, sendJson } from './respond.js';
import { UpstreamError } from './upstream.js';

/** the store when this node is a manager, else undefined (the caller falls back to dockerd) */
function maybeStore(c: Ctx): Store | undefined {
  try { return c.backend.control().store; } catch { return undefined; }
}

function passThrough(err: unknown): unknown {
  return err instanceof UpstreamError ? new HttpError(err.status, err.message) : err;
}

async function localNetworks(c: Ctx, query: string): Promise<{ Name: string; Id: string }[]> {
  try {
    return await c.upstream.getJson<{ Name: string; Id: string }[]>(`/networks${query}`);
  } catch (err) {
    throw passThrough(err);
  }
}

export const networkRoutes: Route[] = [
  route('GET', /^\/networks\/?$/, async (c) => {
    const filters = parseFilters(c.query.get('filters'));
    const s = maybeStore(c);
    const swarm = s ? s.list('networks', networkFilter(filters)).map(networkResource) : [];
    const scopes = filters.get('scope') ?? [];
    const wantLocal = scopes.length === 0 || scopes.some((x) => x !== 'swarm');
    const local = wantLocal ? await localNetworks(c, c.query.toString() ? `?${c.query.toString()}` : '') : [];
    const ids = new Set(swarm.map((n) => n.Id));
    sendJson(c.res, 200, [...swarm, ...local.filter((n) => !ids.has(n.Id))]);
  }),

  route('GET', /^\/networks\/([^/]+)$/, (c) => {
    const input = c.params[0]!;
    const scope = c.query.get('scope') ?? '';
    const s = scope === 'local' ? undefined : maybeStore(c);
    const n = s ? tryResolve(s, 'networks', input) : undefined;
    if (n) return sendJson(c.res, 200, networkResource(n));
    if (scope === 'swarm') throw notFound(`network ${input} not found`);
    c.upstream.forward(c.req, c.res);
  }),

  route('POST', /^\/networks\/create$/, async (c) => {
    const raw = await readBody(c.req);
    let body: unknown;
    try { body = raw.length ? JSON.parse(raw.toString('utf8')) : {}; } catch (err) { throw invalid(`invalid JSON: ${errorMessage(err)}`); }
    const b = (typeof body === 'object' && body !== null ? body : {}) as { Name?: unknown; Driver?: unknown; Scope?: unknown };
    const swarmScoped = b.Driver === 'overlay' || b.Scope === 'swarm';
    if (!swarmScoped) {
      const s = maybeStore(c);
      if (s && typeof b.Name === 'string' && tryResolveByName(s, b.Name)) throw conflict(`network with name ${b.Name} already exists`);
      return c.upstream.forward(c.req, c.res, raw);
    }
    const store = c.backend.control().store;
    if (typeof b.Name === 'string' && b.Name) {
      const filter = encodeURIComponent(JSON.stringify({ name: { [b.Name]: true } }));
      const local = await localNetworks(c, `?filters=${filter}`);
      if (local.some((n) => n.Name === b.Name)) throw conflict(`network with name ${b.Name} already exists`);
    }
    const n = await createNetwork(store, body);
    sendJson(c.res, 201, { Id: n.ID, Warning: '' });
  }),

  route('DELETE', /^\/networks\/([^/]+)$/, async (c) => {
    const s = maybeStore(c);
    const n = s ? tryResolve(s, 'networks', c.params[0]!) : undefined;
    if (!n || !s) return c.upstream.forward(c.req, c.res);
    await removeNetwork(s, n.ID);
    sendEmpty(c.res, 204);
  }),
];

function tryResolveByName(s: Store, name: string): boolean {
  const lower = name.toLowerCase();
  return s.list('networks', (n) => n.Spec.Name.toLowerCase() === lower).length > 0;
}
