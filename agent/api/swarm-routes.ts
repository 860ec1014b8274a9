// Owns the swarm routes of the Docker API: /swarm (inspect, init, join,
// leave, update, unlockkey), /nodes, /services and /tasks. Handlers parse the
// request, call the control API and frame the answer as dockerd does.
import { conflict, invalid } from '../common/errors.js';
import {
  createService, getCluster, getNode, getService, getTask, listNodes, listServices, listTasks,
  parseFilters, removeNode, removeService, updateClusterSpec, updateNode, updateService,
} from '../manager/controlapi/index.js';
import type { SwarmInitRequest, SwarmJoinRequest } from './backend.js';
import { type Ctx, type Route, route } from './context.js';
import { boolParam, readJson, sendEmpty, sendJson, versionParam } from './respond.js';

const store = (c: Ctx) => c.backend.control().store;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const ID = '([^/]+)';

function objectBody(body: unknown, what: string): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isObj(body)) throw invalid(`invalid JSON: body must be a ${what} object`);
  return body;
}

export const swarmRoutes: Route[] = [
  route('GET', /^\/swarm$/, (c) => sendJson(c.res, 200, getCluster(store(c)))),
  route('POST', /^\/swarm\/init$/, async (c) => {
    const req = objectBody(await readJson(c.req), 'InitRequest') as SwarmInitRequest;
    const id = await c.backend.init(req);
    sendJson(c.res, 200, id);
  }),
  route('POST', /^\/swarm\/join$/, async (c) => {
    const req = objectBody(await readJson(c.req), 'JoinRequest') as unknown as SwarmJoinRequest;
    if (!Array.isArray(req.RemoteAddrs) || !req.RemoteAddrs.every((a) => typeof a === 'string')) {
      throw invalid('invalid JSON: RemoteAddrs must be an array of strings');
    }
    if (typeof req.JoinToken !== 'string') throw invalid('invalid JSON: JoinToken must be a string');
    await c.backend.join(req);
    sendEmpty(c.res);
  }),
  route('POST', /^\/swarm\/leave$/, async (c) => {
    await c.backend.leave(boolParam(c.query, 'force'));
    sendEmpty(c.res);
  }),
  route('POST', /^\/swarm\/update$/, async (c) => {
    const cp = c.backend.control();
    const version = versionParam(c.query, 'swarm');
    const body = await readJson(c.req);
    await updateClusterSpec(cp.store, body ?? {}, version);
    if (boolParam(c.query, 'rotateWorkerToken')) await cp.rotateJoinToken('worker');
    if (boolParam(c.query, 'rotateManagerToken')) await cp.rotateJoinToken('manager');
    sendEmpty(c.res);
  }),
  route('GET', /^\/swarm\/unlockkey$/, (c) => {
    c.backend.control();
    sendJson(c.res, 200, { UnlockKey: '' });
  }),
  route('POST', /^\/swarm\/unlock$/, () => { throw conflict('swarm is not locked'); }),

  route('GET', /^\/nodes$/, (c) => sendJson(c.res, 200, listNodes(store(c), parseFilters(c.query.get('filters'))))),
  route('GET', new RegExp(`^/nodes/${ID}$`), (c) => sendJson(c.res, 200, getNode(store(c), c.params[0]!))),
  route('POST', new RegExp(`^/nodes/${ID}/update$`), async (c) => {
    const s = store(c);
    const version = versionParam(c.query, 'node');
    await updateNode(s, c.params[0]!, await readJson(c.req), version);
    sendEmpty(c.res);
  }),
  route('DELETE', new RegExp(`^/nodes/${ID}$`), async (c) => {
    await removeNode(store(c), c.params[0]!, { force: boolParam(c.query, 'force') });
    sendEmpty(c.res);
  }),

  route('GET', /^\/services$/, (c) =>
    sendJson(c.res, 200, listServices(store(c), parseFilters(c.query.get('filters')), { status: boolParam(c.query, 'status') }))),
  route('POST', /^\/services\/create$/, async (c) => {
    const s = store(c);
    const svc = await createService(s, (await readJson(c.req)) ?? {});
    sendJson(c.res, 201, { ID: svc.ID });
  }),
  route('GET', new RegExp(`^/services/${ID}$`), (c) =>
    sendJson(c.res, 200, getService(store(c), c.params[0]!, { insertDefaults: boolParam(c.query, 'insertDefaults') }))),
  route('POST', new RegExp(`^/services/${ID}/update$`), async (c) => {
    const s = store(c);
    const version = versionParam(c.query, 'service');
    const rollback = c.query.get('rollback') === 'previous';
    await updateService(s, c.params[0]!, (await readJson(c.req)) ?? {}, { version, rollback });
    sendJson(c.res, 200, { Warnings: null });
  }),
  route('DELETE', new RegExp(`^/services/${ID}$`), async (c) => {
    await removeService(store(c), c.params[0]!);
    sendEmpty(c.res);
  }),

  route('GET', /^\/tasks$/, (c) => sendJson(c.res, 200, listTasks(store(c), parseFilters(c.query.get('filters'))))),
  route('GET', new RegExp(`^/tasks/${ID}$`), (c) => sendJson(c.res, 200, getTask(store(c), c.params[0]!))),
];

