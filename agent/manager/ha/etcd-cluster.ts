// Owns etcd membership changes made through a client: adding a member
// (MemberAdd, returning the --initial-cluster the new member must start
// with), removing one, and the member list with each member's health (a
// status call to the member itself, short deadline) and which one is the
// Raft leader — what `node ls` shows as Leader / Reachable / Unreachable.
import type { Etcd3, IMember } from 'etcd3';
import { errorMessage } from '../../common/errors.js';
import { etcdClient, type EtcdTLS } from '../store/etcd.js';

export interface MemberStatus {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
  /** the member answered a status call */
  healthy: boolean;
  /** the member is etcd's Raft leader (as seen by the member that answered) */
  isRaftLeader: boolean;
  errors?: string[];
}

/** the --initial-cluster value for a member list, naming the new member */
export function initialClusterOf(members: IMember[], newId: string, newName: string): string {
  const parts: string[] = [];
  for (const m of members) for (const u of m.peerURLs) parts.push(`${m.ID === newId ? newName : m.name}=${u}`);
  return parts.join(',');
}

/**
 * adds a member by its peer URL; start it with joinCluster(initialCluster).
 * etcd refuses an add until every member has been connected for 5 s
 * ("unhealthy cluster", its strict reconfig check): retried up to retryMs.
 */
export async function addMember(client: Etcd3, name: string, peerURL: string, retryMs = 20_000): Promise<{ id: string; initialCluster: string }> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    try {
      return await addMemberOnce(client, name, peerURL);
    } catch (err) {
      if (!/unhealthy cluster/.test(errorMessage(err)) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function addMemberOnce(client: Etcd3, name: string, peerURL: string): Promise<{ id: string; initialCluster: string }> {
  const existing = await client.cluster.memberList({ linearizable: true });
  const same = existing.members.find((m) => m.peerURLs.includes(peerURL));
  if (same) {
    // a retried join: the member was added before but never started
    if (same.name && same.name !== name) throw new Error(`peer URL ${peerURL} already belongs to etcd member ${same.name}`);
    return { id: same.ID, initialCluster: initialClusterOf(existing.members, same.ID, name) };
  }
  const res = await client.cluster.memberAdd({ peerURLs: [peerURL] });
  return { id: res.member.ID, initialCluster: initialClusterOf(res.members, res.member.ID, name) };
}

export async function removeMember(client: Etcd3, id: string): Promise<void> {
  await client.cluster.memberRemove({ ID: id });
}

/** the member with this name (node id), if any */
export async function findMember(client: Etcd3, name: string): Promise<IMember | undefined> {
  const res = await client.cluster.memberList({ linearizable: false });
  return res.members.find((m) => m.name === name);
}

/** every member with its health; an unstarted member (no client URL) is unhealthy */
export async function listMembers(client: Etcd3, tls?: EtcdTLS, timeoutMs = 1_500): Promise<MemberStatus[]> {
  const res = await client.cluster.memberList({ linearizable: false });
  return Promise.all(res.members.map(async (m): Promise<MemberStatus> => {
    const base = { id: m.ID, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: !!m.isLearner };
    if (!m.clientURLs.length) return { ...base, healthy: false, isRaftLeader: false };
    const c = etcdClient({ endpoints: m.clientURLs, tls, callTimeoutMs: timeoutMs });
    try {
      const st = await c.maintenance.status();
      return { ...base, healthy: !st.errors?.length, isRaftLeader: st.leader === m.ID, errors: st.errors?.length ? st.errors : undefined };
    } catch {
      return { ...base, healthy: false, isRaftLeader: false };
    } finally {
      c.close();
    }
  }));
}
