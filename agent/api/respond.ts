// Owns the HTTP framing Docker clients expect: JSON bodies with a trailing
// newline and Content-Length, empty 200s with Content-Length 0, errors as
// {"message": …} with the status from common/errors, dockerd's identity
// headers on every answer, and request bodies read with a size limit.
import type http from 'node:http';
import { ShoalError, errorMessage, httpStatus, invalid } from '../common/errors.js';

export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.12';
export const MAX_BODY = 16 * 1024 * 1024;

export function identityHeaders(server: string): Record<string, string> {
  return { 'Api-Version': API_VERSION, 'Docker-Experimental': 'false', Ostype: 'linux', Server: server };
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value) + '\n');
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

export function sendEmpty(res: http.ServerResponse, status = 200): void {
  res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

export function sendError(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) { res.destroy(); return; }
  const status = err instanceof HttpError ? err.status : httpStatus(err);
  sendJson(res, status, { message: errorMessage(err) });
}

/** an error with an explicit HTTP status (413, or dockerd's own status passed through) */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** the raw body, at most MAX_BODY bytes */
export function readBody(req: http.IncomingMessage, limit = MAX_BODY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) { reject(new HttpError(413, `request body too large (limit ${limit} bytes)`)); req.resume(); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new HttpError(413, `request body too large (limit ${limit} bytes)`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new ShoalError('invalid', 'request aborted')));
  });
}

/** dockerd's ReadJSON: content type checked, empty body → undefined, bad JSON → 400 "invalid JSON: …" */
export async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const ct = req.headers['content-type'];
  const raw = await readBody(req);
  if (ct && !/^application\/json\b/i.test(ct.split(';')[0]!.trim()) && raw.length > 0) {
    throw invalid(`unsupported Content-Type header (${ct}): must be 'application/json'`);
  }
  if (raw.length === 0 || raw.toString('utf8').trim() === '') return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw invalid(`invalid JSON: ${errorMessage(err)}`);
  }
}

/** a boolean query parameter as Go's strconv.ParseBool plus dockerd's BoolValue ("1", "true", "yes") */
export function boolParam(q: URLSearchParams, name: string): boolean {
  const v = (q.get(name) ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false' && v !== 'no' && v !== 'off' && v !== 'none';
}

/** `?version=N`, required on updates */
export function versionParam(q: URLSearchParams, what: string): number {
  const raw = q.get('version');
  const v = raw === null ? NaN : Number(raw);
  if (!Number.isInteger(v) || v < 0) throw invalid(`invalid ${what} version '${raw ?? ''}': must be an unsigned integer`);
  return v;
}
