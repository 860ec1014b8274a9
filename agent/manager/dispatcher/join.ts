// Owns admission of a new node: checks the join token (CA digest and role
// secret), records the node and certifies its public key for its role.
import { invalid } from '../../common/errors.js';
import { newId, nowIso } from '../../common/ids.js';
import type { JoinRequest, JoinResponse } from '../../common/protocol.js';
import type { Node, NodeRole } from '../../common/types.js';
import { caDigest, signNodeCert, type RootCA } from '../ca/ca.js';
import { digestPart, parseToken, sameSecret } from '../ca/tokens.js';
import type { Store } from '../store/types.js';

export const INVALID_TOKEN = 'A valid join token is necessary to join this cluster';

export function roleOfToken(store: Store, ca: RootCA, token: string): NodeRole {
  let parsed;
  try {
    parsed = parseToken(token);
  } catch {
    throw invalid(INVALID_TOKEN);
  }
  if (parsed.digest !== digestPart(caDigest(ca.certPem))) throw invalid('remote CA does not match fingerprint in join token');
  const tokens = store.list('cluster')[0]?.JoinTokens;
  const secretOf = (t: string | undefined) => (t ? parseToken(t).secret : '');
  if (tokens && sameSecret(parsed.secret, secretOf(tokens.Worker))) return 'worker';
  if (tokens && sameSecret(parsed.secret, secretOf(tokens.Manager))) return 'manager';
  throw invalid(INVALID_TOKEN);
}

export async function admit(store: Store, ca: RootCA, req: JoinRequest, canAddManagers: boolean, heartbeatPeriodMs: number): Promise<JoinResponse> {
  if (!req || typeof req.token !== 'string' || typeof req.publicKey !== 'string' || !req.description) throw invalid('malformed join request');
  const role = roleOfToken(store, ca, req.token);
  if (role === 'manager' && !canAddManagers) {
    throw invalid('this swarm keeps its state in the embedded store of its single manager; managers can only be added to a swarm started with the etcd store');
  }
  const nodeId = newId();
  const cluster = store.list('cluster')[0];
  const certPem = await signNodeCert(ca, req.publicKey, nodeId, role, cluster.ID).catch(() => { throw invalid('invalid public key'); });
  const now = nowIso();
  const node: Node = {
    ID: nodeId, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now,
    Spec: { Labels: {}, Role: role, Availability: req.availability ?? 'active' },
    Description: { ...req.description, Hostname: req.hostname || req.description.Hostname },
    Status: { State: 'unknown', Addr: req.advertiseAddr },
  };
  await store.update((tx) => tx.create('nodes', node));
  const managers = store.list('nodes', (n) => !!n.ManagerStatus).map((n) => ({ nodeId: n.ID, addr: n.ManagerStatus!.Addr }));
  return { nodeId, role, certPem, caPem: ca.certPem, managers, heartbeatPeriodMs };
}
