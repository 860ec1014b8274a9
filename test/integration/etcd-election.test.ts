// Leader election and fencing against a real etcd: one leader among
// candidates, a new one when the leader's lease goes (revoked, or its client
// dies), the deposed leader told at once, and its fenced writes refused.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { EtcdMember } from '../../agent/manager/ha/etcd-member.js';
import { LeaderElection } from '../../agent/manager/ha/election.js';
import { EtcdStore, etcdClient, type Fence } from '../../agent/manager/store/etcd.js';
import type { Service } from '../../agent/common/types.js';
import { freePort } from '../helpers/net.js';
import { relay } from '../helpers/relay.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
test.after.always(async () => { for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {}); });

const rnd = (n: number) => 1 + Math.floor(Math.random() * n);
let member: EtcdMember;

test.before(async () => {
  const addr = `127.${rnd(250)}.${rnd(250)}.${rnd(250)}`;
  const dir = mkdtempSync(join(tmpdir(), 'shoal-etcd-'));
  const cport = await freePort(addr);
  let pport = await freePort(addr);
  while (pport === cport) pport = await freePort(addr);
  member = new EtcdMember({ name: 'e1', dir, clientAddr: `${addr}:${cport}`, peerAddr: `${addr}:${pport}` });
  cleanups.push(async () => { await member.kill(); rmSync(dir, { recursive: true, force: true }); });
  await member.initCluster();
});

function client(endpoint = member.clientURL): Etcd3 {
  const c = etcdClient({ endpoints: [endpoint] });
  cleanups.push(() => c.close());
  return c;
}

function svc(id: string, name: string): Service {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: name, TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } }, Mode: { Replicated: { Replicas: 1 } } },
    Endpoint: { Spec: {} },
  };
}

interface Candidate { nodeId: string; el: LeaderElection; client: Etcd3; store: EtcdStore; fence?: Fence; deposed: string[]; elected: number }

async function candidate(nodeId: string, prefix: string, storePrefix: string, endpoint?: string): Promise<Candidate> {
  const c = client(endpoint);
  const store = await EtcdStore.withClient(c, storePrefix);
  cleanups.push(() => store.close());
  const cand: Candidate = { nodeId, client: c, store, deposed: [], elected: 0 } as unknown as Candidate;
  cand.el = new LeaderElection(c, {
    nodeId, ttlSeconds: 2, prefix,
    onElected: (f) => { cand.fence = f; cand.elected++; },
    onDeposed: (reason) => { cand.deposed.push(reason); },
  });
  cleanups.push(() => cand.el.stop());
  cand.el.start();
  return cand;
}

const uniq = () => `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

test('one leader; its lease revoked → the other leads, the deposed one is told and its fenced writes fail', async (t) => {
  const id = uniq();
  const [prefix, storePrefix] = [`/el-${id}/`, `/st-${id}/`];
  const a = await candidate('node-a', prefix, storePrefix);
  await waitFor('a elected', () => a.el.isLeader(), { timeoutMs: 10_000 });
  const b = await candidate('node-b', prefix, storePrefix);
  await waitFor('both observe a as leader', () => a.el.leader() === 'node-a' && b.el.leader() === 'node-a', { timeoutMs: 10_000 });
  t.false(b.el.isLeader());
  await a.store.fenced(a.fence!).update((tx) => tx.create('services', svc('s1', 'by-a')));

  // what etcd does when the lease expires: the lease goes, and the key with it
  const leaseId = a.fence!.key.slice(prefix.length);
  await client().leaseClient.leaseRevoke({ ID: leaseId });
  await waitFor('b elected', () => b.el.isLeader(), { timeoutMs: 15_000 });
  await waitFor('a deposed', () => a.deposed.length > 0, { timeoutMs: 10_000 });
  await waitFor('leader() follows', () => a.el.leader() === 'node-b' || (a.el.leader() === undefined && b.el.leader() === 'node-b'), { timeoutMs: 10_000 });
  const stale = a.store.fenced({ key: a.fence!.key, createRevision: a.fence!.createRevision });
  await t.throwsAsync(stale.update((tx) => tx.create('services', svc('s2', 'by-deposed-a'))), { message: /no longer the leader/ });
  t.is(a.store.get('services', 's2'), undefined);
  await b.store.fenced(b.fence!).update((tx) => tx.create('services', svc('s3', 'by-b')));
  await waitFor('a sees b write', () => a.store.get('services', 's3'), { timeoutMs: 10_000 });
  // a campaigns again and waits behind b
  await waitFor('a candidate again', async () => (await client().getAll().prefix(prefix).keys()).length === 2, { timeoutMs: 15_000 });
  t.false(a.el.isLeader());
  t.is(b.elected, 1);
});

/** a TCP relay whose connections can be cut (a partition between one client and etcd) */
test("the leader is cut off from etcd → it deposes itself at once, the other is elected, the old fence fails", async (t) => {
  const id = uniq();
  const [prefix, storePrefix] = [`/el-${id}/`, `/st-${id}/`];
  const r = await relay(member.clientURL.replace('http://', ''));
  t.teardown(() => r.close());
  const a = await candidate('node-a', prefix, storePrefix, `http://${r.addr}`);
  await waitFor('a elected', () => a.el.isLeader(), { timeoutMs: 10_000 });
  const b = await candidate('node-b', prefix, storePrefix);
  await waitFor('b observes a', () => b.el.leader() === 'node-a', { timeoutMs: 10_000 });
  const fenceA = a.fence!;
  r.cut(true); // no resign: the lease must expire
  await waitFor('a deposed itself', () => a.deposed.length > 0, { timeoutMs: 10_000 });
  await waitFor('b elected', () => b.el.isLeader(), { timeoutMs: 15_000 });
  t.is(b.el.leader(), 'node-b');
  // the old fence, presented through a live client, is refused
  const other = await EtcdStore.withClient(client(), storePrefix);
  cleanups.push(() => other.close());
  await t.throwsAsync(other.fenced(fenceA).update((tx) => tx.create('services', svc('z', 'stale'))), { message: /no longer the leader/ });
  await other.fenced(b.fence!).update((tx) => tx.create('services', svc('y', 'fresh')));
  t.truthy(other.get('services', 'y'));
});

test('stop() resigns: the next candidate takes over without waiting for the TTL', async (t) => {
  const id = uniq();
  const [prefix, storePrefix] = [`/el-${id}/`, `/st-${id}/`];
  const a = await candidate('node-a', prefix, storePrefix);
  await waitFor('a elected', () => a.el.isLeader(), { timeoutMs: 10_000 });
  const b = await candidate('node-b', prefix, storePrefix);
  const c = await candidate('node-c', prefix, storePrefix);
  await waitFor('all observe a', () => b.el.leader() === 'node-a' && c.el.leader() === 'node-a', { timeoutMs: 10_000 });
  await a.el.stop();
  t.deepEqual(a.deposed, ['stopped']);
  await waitFor('one of b, c elected', () => b.el.isLeader() || c.el.isLeader(), { timeoutMs: 10_000 });
  t.false(b.el.isLeader() && c.el.isLeader());
  const next = b.el.isLeader() ? 'node-b' : 'node-c';
  await waitFor('observers agree', () => b.el.leader() === next && c.el.leader() === next, { timeoutMs: 10_000 });
});
