// Owns admission of a new node: checks the join token (CA digest and role
// secret), records the node and certifies its public key for its role. A
// manager is admitted only where managers can be added (the etcd store): its
// node is recorded first (a one-member etcd cannot write once a second,
// unstarted member counts towards the quorum), then its etcd member is added;
// when that fails the node record goes again, so nothing is left half-made.
import { errorMessage, invalid, ShoalError, unavailable } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { newId, nowIso } from '../../common/ids.js';
import type { JoinRequest, JoinResponse } from '../../common/protocol.js';
import type { Node, NodeRole } from '../../common/types.js';
import { caDigest, signNodeCert, type RootCA } from '../ca/ca.js';
import { digestPart, parseToken, sameSecret } from '../ca/tokens.js';
import type { Store } from '../store/types.js';

const log = logger('join');

/** the etcd half of admitting a manager: add its member, return what it starts with */
export interface ManagerAdmission {
  add(nodeId: string, ip: string): Promise<JoinResponse['etcd']>;
  /** the joiner must run an etcd member of its own */
  needsEtcd: boolean;
}

export const MANAGERS_NEED_ETCD = 'this swarm keeps its state in the embedded store of its single manager; managers can only be added to a swarm whose managers run with `shoal agent --store etcd` (Debian package etcd-server)';

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

export async function admit(store: Store, ca: RootCA, req: JoinRequest, managers: ManagerAdmission | undefined, heartbeatPeriodMs: number): Promise<JoinResponse> {
  if (!req || typeof req.token !== 'string' || typeof req.publicKey !== 'string' || !req.description) throw invalid('malformed join request');
  const role = roleOfToken(store, ca, req.token);
  if (role === 'manager' && !managers) throw invalid(MANAGERS_NEED_ETCD);
  if (role === 'manager' && managers!.needsEtcd && !req.canRunEtcd) {
    throw invalid('this node cannot join as a manager: etcd is not installed on it (Debian package etcd-server, binary /usr/bin/etcd); install it, or join as a worker');
  }
  if (role === 'manager' && !/^[0-9.]+$|:/.test(req.advertiseAddr ?? '')) throw invalid(`a manager must advertise an IP address (got "${req.advertiseAddr}")`);
  const nodeId = newId();
  const cluster = store.list('cluster')[0];
  const certPem = await signNodeCert(ca, req.publicKey, nodeId, role, cluster.ID).catch(() => { throw invalid('invalid public key'); });
  const now = nowIso();
  const node: Node = {
    ID: nodeId, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now,
    Spec: { Labels: {}, Role: role, Availability: req.availability ?? 'active' },
    Description: { ...req.description, Hostname: req.hostname || req.description.Hostname },
    Status: { State: 'unknown', Addr: req.advertiseAddr },
    // the port follows the joiner's listen port once it runs its manager
    ...(role === 'manager' ? { ManagerStatus: { Leader: false, Reachability: 'unknown' as const, Addr: `${req.advertiseAddr}:2377` } } : {}),
  };
  await store.update((tx) => tx.create('nodes', node));
  let etcd: JoinResponse['etcd'];
  if (role === 'manager') {
    try {
      etcd = await managers!.add(nodeId, req.advertiseAddr);
    } catch (err) {
      log.warn({ nodeId, err: errorMessage(err) }, 'adding the etcd member failed; the node record goes again');
      await store.update((tx) => { if (tx.get('nodes', nodeId)) tx.remove('nodes', nodeId); }).catch(() => undefined);
      throw err instanceof ShoalError ? err : unavailable(`could not add this manager to the etcd cluster: ${errorMessage(err)}`);
    }
  }
  const list = store.list('nodes', (n) => !!n.ManagerStatus && n.ID !== nodeId).map((n) => ({ nodeId: n.ID, addr: n.ManagerStatus!.Addr }));
  return { nodeId, role, certPem, caPem: ca.certPem, managers: list, heartbeatPeriodMs, ...(etcd ? { etcd } : {}) };
}
