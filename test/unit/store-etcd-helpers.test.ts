// Pure helpers of the etcd backend and HA pieces: key ranges, the initial
// cluster string a joining member starts with, quorum arithmetic and Docker's
// quorum warnings.
import test from 'ava';
import type { IMember } from 'etcd3';
import { prefixEnd } from '../../agent/manager/store/etcd.js';
import { initialClusterOf } from '../../agent/manager/ha/etcd-cluster.js';
import { canRemoveMember, evenManagersAdvice, faultTolerance, leaveManagerError, quorumOf, removingManagerCausesLossOfQuorum } from '../../agent/manager/ha/quorum.js';

test('prefixEnd covers exactly the keys under a prefix', (t) => {
  t.is(prefixEnd('/shoal/').toString(), '/shoal0');
  t.is(prefixEnd('ab').toString(), 'ac');
});

test('initialClusterOf names the new member and keeps the others', (t) => {
  const m = (ID: string, name: string, url: string) => ({ ID, name, peerURLs: [url], clientURLs: [], isLearner: false }) as IMember;
  const s = initialClusterOf([m('1', 'a', 'https://10.0.0.1:2380'), m('2', '', 'https://10.0.0.2:2380')], '2', 'b');
  t.is(s, 'a=https://10.0.0.1:2380,b=https://10.0.0.2:2380');
});

test('quorum arithmetic and Docker wording', (t) => {
  t.deepEqual([1, 2, 3, 4, 5].map(quorumOf), [1, 2, 2, 3, 3]);
  t.deepEqual([1, 2, 3, 4, 5].map(faultTolerance), [0, 0, 1, 1, 2]);
  t.true(removingManagerCausesLossOfQuorum(2, 0));
  t.false(removingManagerCausesLossOfQuorum(3, 0));
  t.true(removingManagerCausesLossOfQuorum(2, 1));
  t.is(leaveManagerError({ reachable: 2, unreachable: 0 }),
    'You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves 1 managers out of 2. ' +
    'Without a Raft quorum your swarm will be inaccessible. The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.');
  t.regex(leaveManagerError({ reachable: 1, unreachable: 0 }), /Removing the last manager erases all current state of the swarm/);
  t.regex(leaveManagerError(undefined), /Doing so may lose the consensus of your cluster/);
  t.is(leaveManagerError({ reachable: 5, unreachable: 0 }).includes('Removing this node leaves'), false);
  const ms = [{ id: 'a', healthy: true }, { id: 'b', healthy: true }, { id: 'c', healthy: false }];
  t.false(canRemoveMember(ms, 'a'));
  t.true(canRemoveMember(ms, 'c'));
  t.true(canRemoveMember([{ id: 'a', healthy: true }, { id: 'b', healthy: true }, { id: 'c', healthy: true }], 'a'));
  t.regex(evenManagersAdvice(4)!, /odd number of managers is recommended/);
  t.is(evenManagersAdvice(3), undefined);
});
