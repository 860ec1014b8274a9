import test from 'ava';
import type { Cluster, Task } from '../../agent/common/types.js';
import { makeNode, makeService, makeTask, type NodeInput, type TaskInput } from '../../agent/manager/scheduler/fixtures.js';
import { ASSIGNED_MESSAGE, PENDING_MESSAGE, Scheduler, type PassStats } from '../../agent/manager/scheduler/scheduler.js';
import { MemoryStore } from '../../agent/manager/store/memory.js';
import type { WriteTx } from '../../agent/manager/store/types.js';

/** a MemoryStore that can run something just before the next transaction */
class HookStore extends MemoryStore {
  before: (() => Promise<void>) | undefined;
  override async update<T>(fn: (tx: WriteTx) => T): Promise<T> {
    const h = this.before;
    this.before = undefined;
    if (h) await h();
    return super.update(fn);
  }
}

function cluster(strategy?: string): Cluster {
  return {
    ID: 'cluster', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: 'default', Labels: strategy ? { 'shoal.strategy': strategy } : {} },
    TLSInfo: { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' },
    RootRotationInProgress: false, DefaultAddrPool: null, SubnetSize: 24, DataPathPort: 4789,
    JoinTokens: { Worker: '', Manager: '' },
  };
}

async function setup(nodeInputs: NodeInput[], opts: { strategy?: string; serviceLabels?: Record<string, string> } = {}) {
  const store = new HookStore();
  const nodes = nodeInputs.map((p, i) => makeNode({ id: `node${i}`, hostname: `h${i}`, ...p }));
  const service = makeService({ id: 'svc', labels: opts.serviceLabels });
  await store.update((tx) => {
    tx.create('cluster', cluster(opts.strategy));
    for (const n of nodes) tx.create('nodes', n);
    tx.create('services', service);
  });
  const addTasks = async (n: number, p: Partial<TaskInput> = {}): Promise<string[]> => {
    const tasks = Array.from({ length: n }, (_, i) => makeTask({ serviceId: service.ID, slot: i + 1, ...p }));
    await store.update((tx) => { for (const t of tasks) tx.create('tasks', t); });
    return tasks.map((t) => t.ID);
  };
  const task = (id: string) => store.get('tasks', id)!;
  const countOn = (ids: string[]) => nodes.map((n) => ids.filter((id) => task(id).NodeID === n.ID).length);
  return { store, nodes, service, addTasks, task, countOn };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** lets queued setImmediate passes and their writes run */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

test('a pass assigns every pending task, spread by default', async (t) => {
  const s = await setup([{}, {}, {}]);
  const ids = await s.addTasks(7);
  const passes: PassStats[] = [];
  await new Scheduler(s.store, { onPass: (p) => passes.push(p) }).tick();
  t.deepEqual(s.countOn(ids), [3, 2, 2]);
  t.like(passes, [{ pending: 7, assigned: 7, unschedulable: 0, skipped: 0 }]);
  const one = s.task(ids[0]!);
  t.is(one.Status.State, 'assigned');
  t.is(one.Status.Message, ASSIGNED_MESSAGE);
  t.is(one.Status.Err, undefined);
  t.truthy(one.Status.Timestamp);
  t.is(one.DesiredState, 'running');
});

test('only pending tasks with desired state running are work items', async (t) => {
  const s = await setup([{}]);
  const [a] = await s.addTasks(1, { state: 'new' });
  const [b] = await s.addTasks(1, { desired: 'shutdown' });
  const [c] = await s.addTasks(1);
  await new Scheduler(s.store).tick();
  t.is(s.task(a!).NodeID, undefined);
  t.is(s.task(b!).NodeID, undefined);
  t.is(s.task(c!).NodeID, 'node0');
});

test('strategy: cluster label, overridden by the service label', async (t) => {
  const s = await setup([{}, {}, {}], { strategy: 'binpack' });
  const ids = await s.addTasks(4);
  await new Scheduler(s.store).tick();
  t.deepEqual(s.countOn(ids), [4, 0, 0]);

  const s2 = await setup([{}, {}, {}], { strategy: 'binpack', serviceLabels: { 'shoal.strategy': 'spread' } });
  const ids2 = await s2.addTasks(3);
  const sched = new Scheduler(s2.store);
  t.is(sched.strategyFor(s2.service), 'spread');
  await sched.tick();
  t.deepEqual(s2.countOn(ids2), [1, 1, 1]);

  const s3 = await setup([{}, {}], { strategy: 'nonsense', serviceLabels: { 'shoal.strategy': 'bogus' } });
  const ids3 = await s3.addTasks(2);
  await new Scheduler(s3.store).tick();
  t.deepEqual(s3.countOn(ids3), [1, 1], 'unknown values fall back to spread');
});

test('random strategy with an injected source', async (t) => {
  const s = await setup([{}, {}, {}], { serviceLabels: { 'shoal.strategy': 'random' } });
  const ids = await s.addTasks(6);
  let i = 0;
  const seq = [0.9, 0.9, 0.1, 0.5, 0.9, 0.1];
  await new Scheduler(s.store, { random: () => seq[i++ % seq.length]! }).tick();
  t.deepEqual(s.countOn(ids), [2, 1, 3]);
});

test('tasks that fit nowhere stay pending with the reason, written once', async (t) => {
  const s = await setup([{ availability: 'drain' }, { state: 'down' }, { cpus: 1 }]);
  const [id] = await s.addTasks(1, { cpus: 2 });
  const sched = new Scheduler(s.store);
  await sched.tick();
  const task = s.task(id!);
  t.is(task.Status.State, 'pending');
  t.is(task.NodeID, undefined);
  t.is(task.Status.Message, PENDING_MESSAGE);
  t.is(task.Status.Err, 'no suitable node (2 nodes not available for new tasks; insufficient resources on 1 node)');
  const rev = s.store.revision;
  await sched.tick();
  t.is(s.store.revision, rev, 'same reason: nothing written');
});

test('pre-assigned tasks are checked only against their node', async (t) => {
  const s = await setup([{}, { availability: 'drain' }]);
  const [ok] = await s.addTasks(1, { nodeId: 'node0' });
  const [drained] = await s.addTasks(1, { nodeId: 'node1' });
  const [gone] = await s.addTasks(1, { nodeId: 'nosuchnode' });
  await new Scheduler(s.store).tick();
  t.is(s.task(ok!).NodeID, 'node0');
  t.is(s.task(ok!).Status.State, 'assigned');
  t.is(s.task(drained!).Status.State, 'pending');
  t.is(s.task(drained!).NodeID, 'node1');
  t.is(s.task(drained!).Status.Err, '1 node not available for new tasks');
  t.is(s.task(gone!).Status.Err, 'node not found');
});

test('a task changed during the pass is skipped, and the next pass takes it', async (t) => {
  const s = await setup([{}, {}]);
  const [id] = await s.addTasks(1);
  s.store.before = async () => {
    await s.store.update((tx) => {
      const cur = tx.get('tasks', id!)!;
      tx.update('tasks', { ...cur, Labels: { touched: 'yes' } });
    });
  };
  const sched = new Scheduler(s.store);
  await sched.tick();
  t.is(s.task(id!).Status.State, 'pending', 'stale write skipped');
  t.is(sched.lastPass?.skipped, 1);
  await sched.tick();
  t.is(s.task(id!).Status.State, 'assigned');
  t.deepEqual(s.task(id!).Labels, { touched: 'yes' }, 'the fresh read is kept');
});

test('existing tasks count: spread around running tasks; finished ones are ignored', async (t) => {
  const s = await setup([{}, {}]);
  await s.addTasks(2, { nodeId: 'node0', state: 'running' });
  await s.addTasks(3, { nodeId: 'node1', state: 'failed' });
  const ids = await s.addTasks(2);
  await new Scheduler(s.store).tick();
  t.deepEqual(s.countOn(ids), [0, 2]);
});

test('started: schedules new tasks as they appear, in batches', async (t) => {
  const s = await setup([{}, {}]);
  const sched = new Scheduler(s.store);
  sched.start();
  t.teardown(() => sched.stop());
  const ids = await s.addTasks(10);
  await until('all assigned', () => ids.every((id) => s.task(id).Status.State === 'assigned'));
  t.deepEqual(s.countOn(ids), [5, 5]);
  const more = await s.addTasks(2);
  await until('new ones assigned', () => more.every((id) => s.task(id).Status.State === 'assigned'));
  t.deepEqual(s.countOn([...ids, ...more]), [6, 6]);
});

test('started: a node becoming available and freed resources trigger a pass; no write loop', async (t) => {
  const s = await setup([{ availability: 'drain' }, { cpus: 1 }]);
  const [busy] = await s.addTasks(1, { nodeId: 'node1', state: 'running', cpus: 1 });
  const sched = new Scheduler(s.store);
  sched.start();
  t.teardown(() => sched.stop());
  const [a, b] = await s.addTasks(2, { cpus: 1 });
  await until('reason written', () => s.task(a!).Status.Err !== undefined && s.task(b!).Status.Err !== undefined);
  t.is(s.task(a!).Status.Err, 'no suitable node (1 node not available for new tasks; insufficient resources on 1 node)');
  await settle();
  const rev = s.store.revision;
  await settle();
  t.is(s.store.revision, rev, 'no further writes while nothing changes');

  // the running task ends: its CPU is free again
  await s.store.update((tx) => {
    const cur = tx.get('tasks', busy!)!;
    tx.update('tasks', { ...cur, Status: { ...cur.Status, State: 'complete' }, DesiredState: 'shutdown' });
  });
  await until('one assigned to node1', () => [a, b].some((id) => s.task(id!).NodeID === 'node1'));

  // the drained node becomes active
  await s.store.update((tx) => {
    const cur = tx.get('nodes', 'node0')!;
    tx.update('nodes', { ...cur, Spec: { ...cur.Spec, Availability: 'active' } });
  });
  await until('both assigned', () => [a, b].every((id) => s.task(id!).Status.State === 'assigned'));
  t.deepEqual(s.countOn([a!, b!]).sort(), [1, 1]);
});

test('started: a node label change makes constrained tasks schedulable', async (t) => {
  const s = await setup([{}, {}]);
  const sched = new Scheduler(s.store);
  sched.start();
  t.teardown(() => sched.stop());
  const [id] = await s.addTasks(1, { constraints: ['node.labels.gpu==yes'] });
  await until('reason written', () => s.task(id!).Status.Err !== undefined);
  t.is(s.task(id!).Status.Err, 'no suitable node (scheduling constraints not satisfied on 2 nodes)');
  await s.store.update((tx) => {
    const cur = tx.get('nodes', 'node1')!;
    tx.update('nodes', { ...cur, Spec: { ...cur.Spec, Labels: { gpu: 'yes' } } });
  });
  await until('assigned', () => s.task(id!).Status.State === 'assigned');
  t.is(s.task(id!).NodeID, 'node1');
});

test('tick while a pass is running waits and runs again; never two passes at once', async (t) => {
  const s = await setup([{}, {}]);
  const sched = new Scheduler(s.store);
  sched.start();
  t.teardown(() => sched.stop());
  const orig = s.store.update.bind(s.store);
  let inside = 0;
  let maxInside = 0;
  // counts the scheduler's transactions only; the test writes through `orig`
  s.store.update = async <T>(fn: (tx: WriteTx) => T): Promise<T> => {
    inside++;
    maxInside = Math.max(maxInside, inside);
    try {
      return await orig(fn);
    } finally {
      inside--;
    }
  };
  const ids: string[] = [];
  const ticks: Promise<void>[] = [];
  for (let i = 0; i < 5; i++) {
    const tasks = Array.from({ length: 3 }, () => makeTask({ serviceId: s.service.ID }));
    await orig((tx) => { for (const x of tasks) tx.create('tasks', x); });
    ids.push(...tasks.map((x) => x.ID));
    ticks.push(sched.tick());
  }
  await Promise.all(ticks);
  t.true(ids.every((id) => s.task(id).Status.State === 'assigned'), 'all assigned once every tick resolved');
  t.is(maxInside, 1);
  const [x, y] = s.countOn(ids);
  t.is(x! + y!, 15);
  t.true(Math.abs(x! - y!) <= 1);
});

test('stop: no more passes', async (t) => {
  const s = await setup([{}]);
  const sched = new Scheduler(s.store);
  sched.start();
  sched.stop();
  const [id] = await s.addTasks(1);
  await settle();
  t.is((s.task(id!) as Task).Status.State, 'pending');
});
