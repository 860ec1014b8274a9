// Owns the wording of control-plane errors: Docker reports failures that come
// from swarmkit as gRPC status strings ("rpc error: code = X desc = …"), and
// failures dockerd finds itself in plain words. Both live here so handlers
// never spell them out.
import { ShoalError, conflict, invalid, notFound } from '../../common/errors.js';

type RpcCode = 'InvalidArgument' | 'AlreadyExists' | 'FailedPrecondition' | 'Unimplemented' | 'Unknown' | 'PermissionDenied' | 'NotFound';

export const rpc = (code: RpcCode, desc: string): string => `rpc error: code = ${code} desc = ${desc}`;

/** 400, as swarmkit's InvalidArgument reaches the Docker API */
export const badSpec = (desc: string) => invalid(rpc('InvalidArgument', desc));
/** 400, as swarmkit's FailedPrecondition reaches the Docker API */
export const precondition = (desc: string) => invalid(rpc('FailedPrecondition', desc));
/** dockerd answers Unimplemented with 501; our error table has no 501, so 400 */
export const unimplemented = (desc: string) => invalid(rpc('Unimplemented', desc));
/** 409 name conflicts */
export const nameConflict = (desc: string) => conflict(rpc('AlreadyExists', desc));

export const NAME_CONFLICT = 'name conflicts with an existing object';

/** a stale Version.Index, worded as Docker prints it */
export function outOfSequenceError(): ShoalError {
  return new ShoalError('out-of-sequence', rpc('Unknown', 'update out of sequence'));
}

/** rewrites store errors into Docker's words (the store says "update out of sequence") */
export function fromStore(err: unknown): unknown {
  if (err instanceof ShoalError && err.code === 'out-of-sequence') return outOfSequenceError();
  return err;
}

export const kindNotFound = (kind: string, input: string) => notFound(`${kind} ${input} not found`);
