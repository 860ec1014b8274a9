// Highly available managers on etcd, proven on a 3-manager + 1-worker netns
// lab where every agent runs with `--store etcd` (an agent-managed etcd
// member per manager) and a host's failure is SIGKILL to every process in its
// namespace: the leader's death elects another leader, keeps every service
// and its acknowledged spec, reschedules the dead host's tasks and takes new
// writes; writes the dying leader acknowledged survive it; a partitioned
// leader can neither write nor lead while the majority goes on, and catches
// up when its link returns. Only the docker CLI is used against the agents.
import test from 'ava';
import { createHaCluster, eventually, type HaCluster } from '../bench/ha-lab.js';
import type { TestAgent } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';

let c: HaCluster;
let managers: TestAgent[];

test.before(async () => {
  c = await createHaCluster(4, 3);
  managers = c.agents.slice(0, 3);
});

test.after.always(async () => {
  await c?.destroy();
});

const logs = () => c.agents.map((a) => `--- ${a.hostname}\n${a.log().slice(-2000)}`).join('\n');

interface Inspected { ID: string; Version: { Index: number }; Spec: { Name: string; Labels: Record<string, string> } & Record<string, unknown> }

async function inspect(via: TestAgent, name: string): Promise<Inspected> {
  return (JSON.parse(await c.ok(via, ['service', 'inspect', name])) as Inspected[])[0]!;
}

/** a leader other than `not`, as `via` shows it */
async function newLeader(via: TestAgent, not: TestAgent): Promise<TestAgent> {
  return waitFor(`a leader other than ${not.hostname} on ${via.hostname}`, async () => {
    const st = await c.managerStatus(via);
    const leaders = [...st].filter(([, s]) => s === 'Leader').map(([h]) => h);
    if (leaders.length !== 1 || leaders[0] === not.hostname) return undefined;
    return c.agents.find((a) => a.hostname === leaders[0]);
  }, { timeoutMs: 60_000 });
}


async function runningOn(via: TestAgent, service: string): Promise<string[]> {
  const out = await c.ok(via, ['service', 'ps', service, '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
  return out.split('\n').filter((l) => / Running /.test(l)).map((l) => l.split(' ')[0]!);
}

async function restartHost(a: TestAgent): Promise<void> {
  await a.restart();
  await waitFor(`${a.hostname} reachable and ready again`, async () => {
    for (const m of managers) {
      if (m === a) continue;
      const st = await c.managerStatus(m).catch(() => undefined);
      if (st?.get(a.hostname) !== 'Reachable') return false;
    }
    const ready = await c.ok(managers.find((m) => m !== a)!, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}']);
    return ready.includes(`${a.hostname} Ready`);
  }, { timeoutMs: 90_000 });
}

test.serial('three managers: one Leader and two Reachable, the same on every manager', async (t) => {
  for (const m of managers) {
    const st = await c.managerStatus(m);
    t.deepEqual([...st.values()].sort(), ['', 'Leader', 'Reachable', 'Reachable'], `node ls on ${m.hostname}`);
    t.is(st.get(managers[0]!.hostname), 'Leader');
  }
  // the worker is no manager
  const r = await c.agents[3]!.docker(['node', 'ls']);
  t.regex(r.stderr, /not a swarm manager/);
});

test.serial('the leader host dies: a new leader, every service with its acknowledged spec, its tasks elsewhere, new writes work', async (t) => {
  const leader = (await c.leader(managers[1]!))!;
  t.truthy(leader, 'a leader before');
  const other = managers.find((m) => m !== leader)!;
  // services written through different managers, one of them updated
  await c.ok(leader, ['service', 'create', '--detach', '--name', 'web', '--replicas', '4', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await c.ok(other, ['service', 'create', '--detach', '--name', 'api', '--replicas', '2', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await c.ok(leader, ['service', 'update', '--detach', '--label-add', 'rev=2', 'api']);
  await waitFor('web 4/4 on 4 nodes', async () => new Set(await runningOn(other, 'web')).size === 4, { timeoutMs: 90_000 });
  const before = new Map<string, Inspected>();
  for (const s of ['web', 'api']) before.set(s, await inspect(leader, s));

  await c.killHost(leader);
  const survivor = managers.find((m) => m !== leader)!;
  const next = await newLeader(survivor, leader);
  t.not(next, leader);
  await waitFor('the dead manager shown Unreachable', async () => (await c.managerStatus(survivor)).get(leader.hostname) === 'Unreachable', { timeoutMs: 30_000 });
  for (const m of managers.filter((x) => x !== leader)) t.is((await c.managerStatus(m)).get(next.hostname), 'Leader', `leader on ${m.hostname}`);

  await eventually(survivor, ['service', 'create', '--detach', '--name', 'after', '--replicas', '1', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  for (const [name, was] of before) {
    const now = await inspect(survivor, name);
    t.is(now.ID, was.ID);
    t.deepEqual(now.Spec, was.Spec, `${name}: the acknowledged spec`);
    t.true(now.Version.Index >= was.Version.Index, `${name}: version ${now.Version.Index} >= ${was.Version.Index}`);
  }
  t.is((await inspect(survivor, 'api')).Spec.Labels.rev, '2');
  // the dead host's task runs elsewhere; nothing is lost
  await waitFor('web 4 running, none on the dead host', async () => {
    const nodes = await runningOn(survivor, 'web');
    return nodes.length === 4 && !nodes.includes(leader.hostname);
  }, { timeoutMs: 90_000 }).catch((err) => { throw new Error(`${(err as Error).message}\n${logs()}`); });
  await waitFor('after and api running', async () => (await runningOn(survivor, 'after')).length === 1 && (await runningOn(survivor, 'api')).length === 2, { timeoutMs: 60_000 });

  // the host comes back: its member restarts from its data and it catches up
  await restartHost(leader);
  const ls = await c.ok(leader, ['service', 'ls', '--format', '{{.Name}}']);
  t.deepEqual(ls.split('\n').filter(Boolean).sort(), ['after', 'api', 'web']);
});

test.serial('200 updates through the leader, the leader killed mid-way: every acknowledged update is there', async (t) => {
  let leader = (await c.leader(managers[0]!))!;
  t.truthy(leader);
  const survivor = managers.find((m) => m !== leader)!;
  await c.ok(leader, ['service', 'create', '--detach', '--name', 'counter', '--replicas', '0', 'local/busybox:1', 'sleep', '3600']);
  const acked: number[] = [];
  let target = leader;
  let killing: Promise<void> | undefined;
  for (let i = 1; i <= 200; i++) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await target.docker(['service', 'update', '--detach', '--label-add', `k${i}=${i}`, 'counter'], { timeoutMs: 20_000 });
      if (r.code === 0) { acked.push(i); break; }
      // the leader is gone (or going): go on through another manager
      if (target === leader) target = survivor;
      if (Date.now() > deadline) throw new Error(`update ${i} kept failing: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    // the kill lands while the next updates are in flight to the leader
    if (i === 100) killing = c.killHost(leader);
  }
  await killing;
  t.true(acked.length === 200, `all 200 acknowledged eventually (${acked.length})`);
  const labels = (await inspect(survivor, 'counter')).Spec.Labels;
  const missing = acked.filter((i) => labels[`k${i}`] !== String(i));
  t.deepEqual(missing, [], 'acknowledged updates missing after failover');
  const next = await newLeader(survivor, leader);
  t.not(next, leader);
  await restartHost(leader);
  leader = next;
  const again = (await inspect(leader, 'counter')).Spec.Labels;
  t.is(Object.keys(again).filter((k) => /^k\d+$/.test(k)).length, 200);
});

test.serial('a partitioned leader can neither write nor lead; the majority goes on; back, it catches up with one leader', async (t) => {
  const cut = (await c.leader(managers[0]!))!;
  t.truthy(cut);
  const majority = managers.filter((m) => m !== cut);
  await c.partition(cut, true);
  // the minority refuses writes (and reads: no quorum, as Docker says)
  const refused = await waitFor(`${cut.hostname} refuses`, async () => {
    const r = await cut.docker(['service', 'create', '--detach', '--name', 'minority', 'local/busybox:1', 'sleep', '3600'], { timeoutMs: 30_000 });
    return r.code !== 0 ? r.stderr : undefined;
  }, { timeoutMs: 60_000 });
  t.regex(refused, /leader|unavailable|quorum|etcd/i);
  // the majority elects another leader and takes writes
  const next = await newLeader(majority[0]!, cut);
  t.true(majority.includes(next));
  await eventually(majority[1]!, ['service', 'create', '--detach', '--name', 'majority', '--replicas', '1', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  for (const m of majority) {
    const st = await c.managerStatus(m);
    t.is([...st.values()].filter((s) => s === 'Leader').length, 1, `one leader on ${m.hostname}`);
  }
  const nr = await cut.docker(['node', 'ls'], { timeoutMs: 20_000 });
  t.not(nr.code, 0, 'node ls on the cut-off manager fails');
  t.regex(nr.stderr, /does not have a leader/);

  await c.partition(cut, false);
  await waitFor(`${cut.hostname} caught up`, async () => {
    const r = await cut.docker(['service', 'ls', '--format', '{{.Name}}'], { timeoutMs: 10_000 });
    return r.code === 0 && r.stdout.split('\n').includes('majority');
  }, { timeoutMs: 90_000 });
  // leadership may move once more when the member rejoins; whoever leads, all managers agree
  let last = '';
  await waitFor('one leader, the same on every manager, the cut manager reachable', async () => {
    const views = await Promise.all(managers.map((m) => c.managerStatus(m).catch(() => undefined)));
    last = JSON.stringify(views.map((v) => v && [...v]));
    if (views.some((v) => !v)) return false;
    const leaders = new Set(views.map((v) => [...v!].filter(([, s]) => s === 'Leader').map(([h]) => h).join()));
    return leaders.size === 1 && ![...leaders][0]!.includes(',') && [...leaders][0] !== '' && views.every((v) => v!.get(cut.hostname) === 'Reachable' || v!.get(cut.hostname) === 'Leader');
  }, { timeoutMs: 60_000 }).catch((err) => { throw new Error(`${(err as Error).message}; last views ${last}`); });
  // the write the minority refused never appears
  const names = (await c.ok(cut, ['service', 'ls', '--format', '{{.Name}}'])).split('\n');
  t.false(names.includes('minority'));
  t.true(names.includes('majority'));
});

test.serial('demote: refused while it would lose the quorum; then the manager becomes a worker and leaves etcd; promoted again, it is back', async (t) => {
  const leader = (await c.leader(managers[0]!))!;
  const [a, b] = managers.filter((m) => m !== leader) as [TestAgent, TestAgent];
  await c.killHost(a);
  await waitFor(`${a.hostname} unreachable`, async () => (await c.managerStatus(leader)).get(a.hostname) === 'Unreachable', { timeoutMs: 30_000 });
  const refused = await leader.docker(['node', 'demote', b.hostname]);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /loss of quorum/);
  t.is((await c.managerStatus(leader)).get(b.hostname), 'Reachable', 'still a manager');
  await restartHost(a);

  await eventually(leader, ['node', 'demote', b.hostname]);
  await waitFor(`${b.hostname} a worker`, async () => {
    const st = await c.managerStatus(leader);
    return st.get(b.hostname) === '' && st.get(a.hostname) === 'Reachable';
  }, { timeoutMs: 60_000 });
  await waitFor(`${b.hostname} refuses manager commands`, async () => /not a swarm manager/.test((await b.docker(['node', 'ls'])).stderr), { timeoutMs: 60_000 });
  await waitFor(`${b.hostname} ready as a worker`, async () => (await c.ok(leader, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).includes(`${b.hostname} Ready`), { timeoutMs: 60_000 });
  // two managers left, both reachable, and the cluster still takes writes
  const st = await c.managerStatus(leader);
  t.deepEqual([...st.values()].filter(Boolean).sort(), ['Leader', 'Reachable']);
  await eventually(a, ['service', 'create', '--detach', '--name', 'after-demote', '--replicas', '0', 'local/busybox:1', 'true']);
  // and back: promoted again, it becomes a Reachable manager
  await c.ok(leader, ['node', 'promote', b.hostname]);
  await waitFor(`${b.hostname} Reachable again`, async () => (await c.managerStatus(leader)).get(b.hostname) === 'Reachable', { timeoutMs: 90_000 });
  t.pass();
});
