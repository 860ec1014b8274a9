// Owns the /secrets and /configs routes of the Docker API: create (201
// {"ID"}), list with filters, inspect, update (labels only, ?version=N),
// remove (204). Secret data is write-only: no answer ever carries it.
import { createFile, getFile, listFiles, parseFilters, removeFile, updateFile, type FileKind } from '../manager/controlapi/index.js';
import { type Ctx, type Route, route } from './context.js';
import { readJson, sendJson, versionParam } from './respond.js';

const ID = '([^/]+)';
const store = (c: Ctx) => c.backend.control().store;

function routesFor(kind: FileKind): Route[] {
  const word = kind === 'secrets' ? 'secret' : 'config';
  return [
    route('GET', new RegExp(`^/${kind}$`), (c) => sendJson(c.res, 200, listFiles(store(c), kind, parseFilters(c.query.get('filters'))))),
    route('POST', new RegExp(`^/${kind}/create$`), async (c) => {
      const s = store(c);
      const id = await createFile(s, kind, (await readJson(c.req)) ?? {});
      sendJson(c.res, 201, { ID: id });
    }),
    route('GET', new RegExp(`^/${kind}/${ID}$`), (c) => sendJson(c.res, 200, getFile(store(c), kind, c.params[0]!))),
    route('POST', new RegExp(`^/${kind}/${ID}/update$`), async (c) => {
      const s = store(c);
      const version = versionParam(c.query, word);
      await updateFile(s, kind, c.params[0]!, (await readJson(c.req)) ?? {}, version);
      c.res.writeHead(200, { 'Content-Length': 0 }).end();
    }),
    route('DELETE', new RegExp(`^/${kind}/${ID}$`), async (c) => {
      await removeFile(store(c), kind, c.params[0]!);
      c.res.writeHead(204).end();
    }),
  ];
}

export const secretRoutes: Route[] = [...routesFor('secrets'), ...routesFor('configs')];
