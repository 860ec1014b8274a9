// Owns the quorum arithmetic and the warnings Docker prints for manager
// changes that would lose (or risk) the Raft quorum: `swarm leave` on a
// manager, demote and node rm of a manager, and the advice to keep an odd
// number of managers. Pure functions; callers pass member health from
// etcd-cluster.listMembers.

export const quorumOf = (members: number): number => Math.floor(members / 2) + 1;

/** managers that may be lost while keeping the quorum */
export const faultTolerance = (members: number): number => Math.max(0, members - quorumOf(members));

/** true when removing one reachable manager leaves fewer reachable than the new quorum (Docker's check) */
export function removingManagerCausesLossOfQuorum(reachable: number, unreachable: number): boolean {
  return reachable - 2 <= unreachable;
}

export function isLastManager(reachable: number, unreachable: number): boolean {
  return reachable === 1 && unreachable === 0;
}

/**
 * the error Docker returns for `swarm leave` (without --force) on a manager;
 * `stats` undefined when the node is not an active manager (no health known)
 */
export function leaveManagerError(stats: { reachable: number; unreachable: number } | undefined): string {
  let msg = 'You are attempting to leave the swarm on a node that is participating as a manager. ';
  if (stats) {
    if (removingManagerCausesLossOfQuorum(stats.reachable, stats.unreachable)) {
      if (isLastManager(stats.reachable, stats.unreachable)) {
        return msg + 'Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. ';
      }
      msg += `Removing this node leaves ${stats.reachable - 1} managers out of ${stats.reachable + stats.unreachable}. Without a Raft quorum your swarm will be inaccessible. `;
    }
  } else {
    msg += 'Doing so may lose the consensus of your cluster. ';
  }
  return msg + 'The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.';
}

/** swarmkit's quorum safeguard for demote / remove: the remaining reachable members must still form a quorum */
export function canRemoveMember(members: { id: string; healthy: boolean }[], id: string): boolean {
  const rest = members.filter((m) => m.id !== id);
  const reachable = rest.filter((m) => m.healthy).length;
  return reachable >= quorumOf(rest.length);
}

export const DEMOTE_LOSES_QUORUM = "can't remove member from the raft: this would result in a loss of quorum";
export const DEMOTE_LAST_MANAGER = 'attempting to demote the last manager of the swarm';
export const NOT_ENOUGH_MANAGERS = 'The swarm does not have a leader. It\'s possible that too few managers are online. Make sure more than half of the managers are online.';

/** advice when a change leaves an even number of managers (no added fault tolerance), else undefined */
export function evenManagersAdvice(managersAfter: number): string | undefined {
  if (managersAfter < 2 || managersAfter % 2 === 1) return undefined;
  return `The swarm will have ${managersAfter} managers: it tolerates the loss of ${faultTolerance(managersAfter)}, as ${managersAfter - 1} would. ` +
    'An odd number of managers is recommended.';
}
