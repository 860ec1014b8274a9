// Owns GET /events on managers: swarm events (services, nodes, networks,
// secrets, configs) from the manager's event log, merged with the local
// dockerd's own events unless the filters ask only for swarm types; workers
// and non-swarm-only requests go to dockerd untouched. Streams JSON lines.
import { invalid } from '../common/errors.js';
import { dockerClient } from '../docker.js';
import { SWARM_EVENT_TYPES, eventLog, matches, type SwarmEvent } from '../manager/events.js';
import type { ControlPlane } from './backend.js';
import { type Ctx, type Route, route } from './context.js';

function parseFilters(raw: string | null): Record<string, string[]> {
  if (!raw) return {};
  let v: unknown;
  try { v = JSON.parse(raw); } catch { throw invalid(`invalid filter '${raw}'`); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`invalid filter '${raw}'`);
  const out: Record<string, string[]> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (Array.isArray(val)) out[k] = val.map(String);
    else if (val && typeof val === 'object') out[k] = Object.keys(val as object).filter((x) => (val as Record<string, unknown>)[x]);
    else throw invalid(`invalid filter '${k}'`);
  }
  return out;
}

/** Docker's since/until: unix seconds (with an optional fraction) or an RFC 3339 time; ms or undefined */
function parseTime(raw: string | null, what: string): number | undefined {
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw invalid(`invalid value for "${what}": "${raw}"`);
  return t;
}

async function streamEvents(c: Ctx, plane: ControlPlane, filters: Record<string, string[]>, types: string[]): Promise<void> {
  const since = parseTime(c.query.get('since'), 'since');
  const until = parseTime(c.query.get('until'), 'until');
  const res = c.res;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Server': c.serverName, 'Api-Version': '1.41' });
  res.flushHeaders();
  const write = (e: unknown) => { if (!res.writableEnded) res.write(JSON.stringify(e) + '\n'); };
  const fit = (e: SwarmEvent) => matches(e, filters) && (until === undefined || e.timeNano / 1e6 <= until);
  const log = eventLog(plane.store);
  const cleanups: (() => void)[] = [];
  const end = () => { for (const f of cleanups.splice(0)) f(); if (!res.writableEnded) res.end(); };
  if (since !== undefined) for (const e of log.past(since)) if (fit(e)) write(e);
  if (until !== undefined && until <= Date.now()) {
    // a bounded query over the past: what dockerd has too, then done
    if (!types.length || types.some((t) => !SWARM_EVENT_TYPES.has(t))) await pipeLocal(c, filters, since, until, write, cleanups);
    end();
    return;
  }
  cleanups.push(log.subscribe((e) => { if (fit(e)) write(e); }));
  if (!types.length || types.some((t) => !SWARM_EVENT_TYPES.has(t))) void pipeLocal(c, filters, since, until, write, cleanups, true);
  if (until !== undefined) {
    const timer = setTimeout(end, until - Date.now());
    cleanups.push(() => clearTimeout(timer));
  }
  c.req.socket.on('close', end);
  res.on('close', end);
}

/** dockerd's own events (containers, images, …) for the same filters */
function pipeLocal(c: Ctx, filters: Record<string, string[]>, since: number | undefined, until: number | undefined,
  write: (e: unknown) => void, cleanups: (() => void)[], live = false): Promise<void> {
  const local: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(filters)) {
    if (SWARM_EVENT_TYPES.has(k)) continue;
    local[k] = k === 'type' ? v.filter((t) => !SWARM_EVENT_TYPES.has(t)) : v;
  }
  return new Promise((resolve) => {
    const opts: Record<string, unknown> = { filters: JSON.stringify(local) };
    if (since !== undefined) opts.since = Math.floor(since / 1000);
    if (until !== undefined) opts.until = Math.ceil(until / 1000);
    dockerClient(c.upstream.dockerHost).getEvents(opts, (err, stream) => {
      if (err || !stream) { resolve(); return; }
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) { try { write(JSON.parse(line)); } catch { /* not an event */ } }
        }
      });
      stream.on('end', () => resolve());
      stream.on('error', () => resolve());
      cleanups.push(() => (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.());
      if (live) resolve();
    });
  });
}

export const eventsRoutes: Route[] = [
  route('GET', /^\/events$/, async (c) => {
    let plane: ControlPlane;
    try { plane = c.backend.control(); } catch { c.upstream.forward(c.req, c.res); return; }
    const filters = parseFilters(c.query.get('filters'));
    const types = filters.type ?? [];
    const objectKeys = Object.keys(filters).filter((k) => SWARM_EVENT_TYPES.has(k));
    if (types.length && !types.some((t) => SWARM_EVENT_TYPES.has(t)) && !objectKeys.length) { c.upstream.forward(c.req, c.res); return; }
    await streamEvents(c, plane, filters, types);
  }),
];
