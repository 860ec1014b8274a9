// Owns typed errors: every failure the API can report carries a code, and the
// code maps to an HTTP status in exactly one place (httpStatus below).

export type ErrorCode =
  | 'invalid'        // 400: bad spec, malformed JSON, bad parameter
  | 'not-found'      // 404: unknown object
  | 'conflict'       // 409: name already in use
  | 'out-of-sequence' // 400: stale Version.Index on update
  | 'unavailable'    // 503: not a manager / not in a swarm / already in a swarm
  | 'forbidden'      // 403: role not allowed
  | 'internal';      // 500: real faults

export class ShoalError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'ShoalError';
  }
}

export const invalid = (msg: string) => new ShoalError('invalid', msg);
export const notFound = (msg: string) => new ShoalError('not-found', msg);
export const conflict = (msg: string) => new ShoalError('conflict', msg);
export const unavailable = (msg: string) => new ShoalError('unavailable', msg);
export const outOfSequence = () => new ShoalError('out-of-sequence', 'update out of sequence');

const STATUS: Record<ErrorCode, number> = {
  invalid: 400,
  'not-found': 404,
  conflict: 409,
  // dockerd maps swarmkit's "update out of sequence" (gRPC InvalidArgument) to 400
  'out-of-sequence': 400,
  unavailable: 503,
  forbidden: 403,
  internal: 500,
};

export function httpStatus(err: unknown): number {
  return err instanceof ShoalError ? STATUS[err.code] : 500;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
