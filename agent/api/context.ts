// Owns what every route handler receives, and the route table's shape.
import type http from 'node:http';
import type { SwarmBackend } from './backend.js';
import type { Upstream } from './upstream.js';

export interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** path without the /v1.NN prefix */
  path: string;
  query: URLSearchParams;
  /** decoded path parameters, in pattern order */
  params: string[];
  backend: SwarmBackend;
  upstream: Upstream;
  /** value of the Server header, "shoal/<version>" */
  serverName: string;
}

export interface Route {
  method: string;
  pattern: RegExp;
  handler: (c: Ctx) => Promise<void> | void;
}

export const route = (method: string, pattern: RegExp, handler: Route['handler']): Route => ({ method, pattern, handler });
