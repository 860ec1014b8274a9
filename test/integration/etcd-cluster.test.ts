// A 3-member etcd cluster built by the supervisor (initCluster, addMember +
// joinCluster) on 127.x.y.{1,2,3} with peer and client TLS from a swarm CA;
// the store keeps working when the Raft leader member is killed -9 in the
// middle of 200 updates, and nothing acknowledged is lost. Membership health
// and the quorum guard follow.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootCA, issueNodeCert } from '../../agent/manager/ca/ca.js';
import { issueEtcdCert } from '../../agent/manager/ha/etcd-certs.js';
import { addMember, listMembers, removeMember } from '../../agent/manager/ha/etcd-cluster.js';
import { EtcdMember } from '../../agent/manager/ha/etcd-member.js';
import { canRemoveMember, leaveManagerError } from '../../agent/manager/ha/quorum.js';
import { EtcdStore, etcdClient, type EtcdTLS } from '../../agent/manager/store/etcd.js';
import type { Service } from '../../agent/common/types.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
test.after.always(async () => { for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {}); });

const rnd = (n: number) => 1 + Math.floor(Math.random() * n);

function svc(id: string, labels: Record<string, string> = {}): Service {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: id, Labels: labels, TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } }, Mode: { Replicated: { Replicas: 1 } } },
    Endpoint: { Spec: {} },
  };
}

test('3 members with TLS: a member killed mid-way through 200 updates loses nothing acknowledged', async (t) => {
  const net = `127.${rnd(250)}.${rnd(250)}`;
  const ca = await createRootCA();
  const members: EtcdMember[] = [];
  const make = async (i: number): Promise<EtcdMember> => {
    const ip = `${net}.${i}`;
    const dir = mkdtempSync(join(tmpdir(), 'shoal-etcd-'));
    const cport = await freePort(ip);
    let pport = await freePort(ip);
    while (pport === cport) pport = await freePort(ip);
    const m = new EtcdMember({ name: `node-${i}`, dir, clientAddr: `${ip}:${cport}`, peerAddr: `${ip}:${pport}`, tls: await issueEtcdCert(ca, `node-${i}`, [ip]), clusterToken: `t-${net}` });
    cleanups.push(async () => { await m.kill(); rmSync(dir, { recursive: true, force: true }); });
    members.push(m);
    return m;
  };
  // the manager's own node certificate is its etcd client certificate
  const node = await issueNodeCert(ca, 'mgr', 'manager', 'cluster');
  const tls: EtcdTLS = { caPem: ca.certPem, certPem: node.certPem, keyPem: node.keyPem };

  const m1 = await make(1);
  await m1.initCluster();
  const admin = etcdClient({ endpoints: [m1.clientURL], tls });
  cleanups.push(() => admin.close());
  for (const i of [2, 3]) {
    const m = await make(i);
    const { initialCluster } = await addMember(admin, m.opts.name, m.peerURL);
    t.true(initialCluster.includes(`node-1=${m1.peerURL}`) && initialCluster.includes(`node-${i}=${m.peerURL}`));
    await m.joinCluster(initialCluster);
  }
  const status = await waitFor('3 healthy members', async () => {
    const l = await listMembers(admin, tls);
    return l.length === 3 && l.every((m) => m.healthy) && l.filter((m) => m.isRaftLeader).length === 1 ? l : undefined;
  }, { timeoutMs: 30_000 });
  t.deepEqual(status.map((m) => m.name).sort(), ['node-1', 'node-2', 'node-3']);

  const endpoints = members.map((m) => m.clientURL);
  const store = await EtcdStore.open({ endpoints, tls, prefix: '/shoal/' });
  cleanups.push(() => store.close());
  await store.update((tx) => tx.create('services', svc('counter', { last: '-1' })));

  const leader = members.find((m) => m.opts.name === status.find((s) => s.isRaftLeader)!.name)!;
  const acked: number[] = [];
  let failures = 0;
  for (let i = 0; i < 200; i++) {
    if (i === 100) await leader.kill();
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await store.update((tx) => {
          if (!tx.get('services', `s${i}`)) tx.create('services', svc(`s${i}`));
          tx.update('services', { ...tx.get('services', 'counter')!, Spec: svc('counter', { last: String(i) }).Spec });
        });
        acked.push(i);
        break;
      } catch (err) {
        failures++;
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  t.log(`200 updates, ${failures} failed attempts retried while the leader member was down`);
  t.is(acked.length, 200);

  // a fresh store on the survivors sees every acknowledged write
  const survivors = members.filter((m) => m !== leader).map((m) => m.clientURL);
  const check = await EtcdStore.open({ endpoints: survivors, tls, prefix: '/shoal/' });
  cleanups.push(() => check.close());
  for (const i of acked) t.truthy(check.get('services', `s${i}`), `s${i} present`);
  t.is(check.get('services', 'counter')!.Spec.Labels!.last, '199');
  t.is(check.get('services', 'counter')!.Version.Index, store.get('services', 'counter')!.Version.Index);

  // health: the killed member is unreachable; removing a healthy one would lose quorum, the dead one not
  const admin2 = etcdClient({ endpoints: survivors, tls });
  cleanups.push(() => admin2.close());
  const after = await waitFor('dead member unhealthy', async () => {
    const l = await listMembers(admin2, tls);
    return l.filter((m) => m.healthy).length === 2 ? l : undefined;
  }, { timeoutMs: 30_000 });
  const dead = after.find((m) => !m.healthy)!;
  t.is(dead.name, leader.opts.name);
  t.false(canRemoveMember(after, after.find((m) => m.healthy)!.id));
  t.true(canRemoveMember(after, dead.id));
  t.regex(leaveManagerError({ reachable: 2, unreachable: 1 }), /Removing this node leaves 1 managers out of 3. Without a Raft quorum/);
  await removeMember(admin2, dead.id);
  const two = await listMembers(admin2, tls);
  t.deepEqual(two.map((m) => m.healthy), [true, true]);
  await store.update((tx) => tx.remove('services', 's0'));
  await waitFor('check sees the removal', () => !check.get('services', 's0'), { timeoutMs: 10_000 });
});
