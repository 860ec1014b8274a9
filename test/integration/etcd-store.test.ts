// EtcdStore against a real etcd (started by EtcdMember on a random loopback
// address and port, temp data dir): the in-memory store's semantics, two
// stores on one etcd, watch resumption after an etcd crash, and a reload after
// the watch's revision was compacted away.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdMember } from '../../agent/manager/ha/etcd-member.js';
import { EtcdStore } from '../../agent/manager/store/etcd.js';
import type { Service, Task } from '../../agent/common/types.js';
import { freePort } from '../helpers/net.js';
import { relay } from '../helpers/relay.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
test.after.always(async () => { for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {}); });

function svc(id: string, name: string): Service {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: name, TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } }, Mode: { Replicated: { Replicas: 1 } } },
    Endpoint: { Spec: {} },
  };
}

function task(id: string, serviceId: string, nodeId: string): Task {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', ServiceID: serviceId, NodeID: nodeId, Spec: svc(serviceId, 'x').Spec.TaskTemplate,
    Status: { State: 'new', Timestamp: '', Message: '' }, DesiredState: 'running',
  };
}

const rnd = (n: number) => 1 + Math.floor(Math.random() * n);

async function startEtcd(name = 'm1'): Promise<EtcdMember> {
  const addr = `127.${rnd(250)}.${rnd(250)}.${rnd(250)}`;
  const dir = mkdtempSync(join(tmpdir(), 'shoal-etcd-'));
  const cport = await freePort(addr);
  let pport = await freePort(addr);
  while (pport === cport) pport = await freePort(addr);
  const m = new EtcdMember({ name, dir, clientAddr: `${addr}:${cport}`, peerAddr: `${addr}:${pport}` });
  cleanups.push(async () => { await m.kill(); rmSync(dir, { recursive: true, force: true }); });
  await m.initCluster();
  return m;
}

let member: EtcdMember;
test.before(async () => { member = await startEtcd(); });

let n = 0;
async function open(prefix?: string): Promise<EtcdStore> {
  const s = await EtcdStore.open({ endpoints: [member.clientURL], prefix });
  cleanups.push(() => s.close());
  return s;
}
const uniquePrefix = () => `/t${process.pid}-${++n}-${Math.random().toString(36).slice(2, 7)}/`;

test('transactions are atomic, versions are etcd revisions, CAS and create conflicts', async (t) => {
  const s = await open(uniquePrefix());
  await s.update((tx) => { tx.create('services', svc('a', 'web')); tx.create('services', svc('b', 'db')); });
  t.is(s.list('services').length, 2);
  const v = s.get('services', 'a')!.Version.Index;
  t.is(s.get('services', 'b')!.Version.Index, v, 'one transaction, one revision');
  t.true(s.revision >= v);
  await t.throwsAsync(s.update((tx) => {
    tx.create('services', svc('c', 'x'));
    tx.update('services', svc('a', 'web2'), v - 1);
  }), { message: 'update out of sequence' });
  t.is(s.get('services', 'c'), undefined, 'failed transaction wrote nothing');
  await s.update((tx) => tx.update('services', { ...svc('a', 'web2') }, v));
  t.true(s.get('services', 'a')!.Version.Index > v, 'read-your-writes right after update resolves');
  t.is(s.get('services', 'a')!.Spec.Name, 'web2');
  await t.throwsAsync(s.update((tx) => tx.create('services', svc('a', 'dup'))), { message: /already exists/ });
  await s.update((tx) => tx.remove('services', 'b'));
  t.is(s.get('services', 'b'), undefined);
  // reopened from etcd: the same objects and versions
  const again = await EtcdStore.withClient(s.client, s.prefix);
  t.deepEqual(again.list('services').map((o) => [o.ID, o.Version.Index, o.Spec.Name]), s.list('services').map((o) => [o.ID, o.Version.Index, o.Spec.Name]));
  await again.close();
});

test('objects handed out by a transaction are private copies', async (t) => {
  const s = await open(uniquePrefix());
  await s.update((tx) => { tx.create('services', svc('a', 'web')); });
  await t.throwsAsync(s.update((tx) => {
    const o = tx.get('services', 'a')!;
    o.Spec.Name = 'mutated';
    throw new Error('abort');
  }));
  t.is(s.get('services', 'a')!.Spec.Name, 'web');
});

test('watch sees every change in order, once, and task indexes follow', async (t) => {
  const s = await open(uniquePrefix());
  const seen: string[] = [];
  const revs: number[] = [];
  const stop = s.watch((cs) => { for (const c of cs) { seen.push(`${c.action}:${c.kind}:${c.object.ID}`); revs.push(c.revision); } });
  await s.update((tx) => tx.create('services', svc('a', 'web')));
  await s.update((tx) => tx.create('tasks', task('t1', 'a', 'n1')));
  t.deepEqual(s.byIndex('tasks', 'node', 'n1').map((x) => x.ID), ['t1']);
  await s.update((tx) => tx.update('tasks', { ...tx.get('tasks', 't1')!, NodeID: 'n2' }));
  t.deepEqual(s.byIndex('tasks', 'node', 'n1'), []);
  t.deepEqual(s.byIndex('tasks', 'node', 'n2').map((x) => x.ID), ['t1']);
  await s.update((tx) => tx.remove('tasks', 't1'));
  stop();
  await s.update((tx) => tx.remove('services', 'a'));
  t.deepEqual(seen, ['create:services:a', 'create:tasks:t1', 'update:tasks:t1', 'remove:tasks:t1']);
  t.deepEqual([...revs].sort((x, y) => x - y), revs, 'revisions increase');
  t.deepEqual(s.byIndex('tasks', 'service', 'a'), []);
});

test('two stores on one etcd: each sees the other, and conflicting updates never both win', async (t) => {
  const prefix = uniquePrefix();
  const a = await open(prefix);
  const b = await open(prefix);
  await a.update((tx) => tx.create('services', svc('c', 'counter')));
  await waitFor('b sees a', () => b.get('services', 'c'), { timeoutMs: 10_000 });
  // read-modify-write increments from both stores at once: none may be lost
  const inc = (s: EtcdStore) => s.update((tx) => {
    const o = tx.get('services', 'c')!;
    o.Spec.Labels = { n: String(Number(o.Spec.Labels?.n ?? 0) + 1) };
    tx.update('services', o);
  });
  const results = await Promise.allSettled([...Array.from({ length: 15 }, () => inc(a)), ...Array.from({ length: 15 }, () => inc(b))]);
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  t.true(ok > 0);
  await waitFor('both agree', () => a.get('services', 'c')!.Version.Index === b.get('services', 'c')!.Version.Index, { timeoutMs: 10_000 });
  t.is(Number(a.get('services', 'c')!.Spec.Labels!.n), ok, 'every acknowledged increment is there, none twice');
  // the same expected version from both: exactly one wins, the other is out of sequence
  const v = a.get('services', 'c')!.Version.Index;
  await waitFor('b current', () => b.get('services', 'c')!.Version.Index === v, { timeoutMs: 10_000 });
  const race = await Promise.allSettled([
    a.update((tx) => tx.update('services', { ...svc('c', 'from-a') }, v)),
    b.update((tx) => tx.update('services', { ...svc('c', 'from-b') }, v)),
  ]);
  t.is(race.filter((r) => r.status === 'fulfilled').length, 1);
  const lost = race.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.is(lost.reason.message, 'update out of sequence');
  // a version the mirror has not seen yet (from the other store) is caught up with, not refused
  const bv = await b.update((tx) => tx.update('services', { ...tx.get('services', 'c')!, Spec: svc('c', 'b-again').Spec }));
  void bv;
  const newest = b.get('services', 'c')!.Version.Index;
  await a.update((tx) => tx.update('services', { ...svc('c', 'a-with-b-version') }, newest));
  t.is(a.get('services', 'c')!.Spec.Name, 'a-with-b-version');
  // create races: one wins
  const creates = await Promise.allSettled([a.update((tx) => tx.create('services', svc('x', 'a'))), b.update((tx) => tx.create('services', svc('x', 'b')))]);
  t.is(creates.filter((r) => r.status === 'fulfilled').length, 1);
  t.regex((creates.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.message, /already exists/);
});

test('the watch resumes after etcd crashes and the supervisor restarts it', async (t) => {
  const own = await startEtcd('crashy');
  const prefix = uniquePrefix();
  const a = await EtcdStore.open({ endpoints: [own.clientURL], prefix });
  const b = await EtcdStore.open({ endpoints: [own.clientURL], prefix });
  t.teardown(async () => { await a.close(); await b.close(); });
  const seen: string[] = [];
  a.watch((cs) => { for (const c of cs) seen.push(`${c.action}:${c.object.ID}`); });
  await b.update((tx) => tx.create('services', svc('before', 'x')));
  await waitFor('a sees before', () => a.get('services', 'before'), { timeoutMs: 10_000 });
  process.kill(own.pid!, 'SIGKILL');
  await waitFor('supervisor restarted etcd', async () => {
    if (own.restartCount < 1 || !own.pid) return false;
    const c = own.client();
    try { await c.maintenance.status(); return true; } finally { c.close(); }
  }, { timeoutMs: 30_000 });
  await waitFor('b can write again', () => b.update((tx) => tx.create('services', svc('after', 'y'))).then(() => true), { timeoutMs: 30_000, intervalMs: 500 });
  await waitFor('a sees after', () => a.get('services', 'after'), { timeoutMs: 30_000 });
  await waitFor('a can write again', () => a.update((tx) => tx.remove('services', 'before')).then(() => true), { timeoutMs: 30_000, intervalMs: 500 });
  await waitFor('b sees the removal', () => !b.get('services', 'before'), { timeoutMs: 10_000 });
  t.deepEqual(seen, ['create:before', 'create:after', 'remove:before']);
});

test('a watch whose revision was compacted reloads the mirror and delivers the difference', async (t) => {
  const prefix = uniquePrefix();
  const r = await relay(member.clientURL.replace('http://', ''));
  t.teardown(() => r.close());
  const a = await EtcdStore.open({ endpoints: [`http://${r.addr}`], prefix });
  const b = await open(prefix);
  t.teardown(() => a.close());
  await b.update((tx) => { tx.create('services', svc('keep', 'k')); tx.create('services', svc('gone', 'g')); });
  await waitFor('a sees both', () => a.list('services').length === 2, { timeoutMs: 10_000 });
  const seen: string[] = [];
  a.watch((cs) => { for (const c of cs) seen.push(`${c.action}:${c.object.ID}`); });
  r.cut(true);
  for (let i = 0; i < 5; i++) await b.update((tx) => tx.update('services', { ...tx.get('services', 'keep')!, Spec: svc('keep', `k${i}`).Spec }));
  await b.update((tx) => { tx.remove('services', 'gone'); tx.create('services', svc('new', 'n')); });
  const c = member.client();
  t.teardown(() => c.close());
  await c.kv.compact({ revision: b.appliedRevision, physical: true });
  r.cut(false);
  await waitFor('a reloaded', () => a.get('services', 'keep')?.Spec.Name === 'k4' && !a.get('services', 'gone') && a.get('services', 'new'), { timeoutMs: 30_000 });
  t.deepEqual([...seen].sort(), ['create:new', 'remove:gone', 'update:keep']);
  t.is(a.get('services', 'keep')!.Version.Index, b.get('services', 'keep')!.Version.Index);
  await a.update((tx) => tx.remove('services', 'new'));
  await waitFor('b sees a write after the reload', () => !b.get('services', 'new'), { timeoutMs: 10_000 });
});
