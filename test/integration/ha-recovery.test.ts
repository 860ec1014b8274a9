// Changing and recovering an etcd swarm's managers on the netns lab, with the
// docker CLI only: `swarm init --force-new-cluster` on the one manager left
// of three brings back a writable swarm with every service and its spec
// version; `node promote` of a worker makes it a Reachable manager that keeps
// the swarm writable when the original leader's host dies.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createHaCluster, eventually, type HaCluster } from '../bench/ha-lab.js';
import type { TestAgent } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';
import { hostDocker } from '../helpers/docker.js';

const sfx = randomBytes(3).toString('hex');
const NO_LEADER = 'The swarm does not have a leader';

interface Inspected { ID: string; Version: { Index: number }; Spec: { Name: string } }

async function services(c: HaCluster, via: TestAgent): Promise<Map<string, number>> {
  const ids = (await c.ok(via, ['service', 'ls', '-q'])).split('\n').filter(Boolean);
  if (!ids.length) return new Map();
  const all = JSON.parse(await c.ok(via, ['service', 'inspect', ...ids])) as Inspected[];
  return new Map(all.map((s) => [s.Spec.Name, s.Version.Index]));
}


const create = (name: string) => ['service', 'create', '--detach', '--name', name, '--replicas', '1', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600'];
const logsOf = (c: HaCluster) => c.agents.map((a) => `--- ${a.hostname}\n${a.log().slice(-2500)}`).join('\n');

test.serial('force-new-cluster: the last of three managers brings the swarm back with every service', async (t) => {
  const c = await createHaCluster(3, 3);
  t.teardown(() => c.destroy());
  const [m1, m2, m3] = c.agents as [TestAgent, TestAgent, TestAgent];
  try {
    await c.ok(m1, create(`a-${sfx}`));
    await c.ok(m1, create(`b-${sfx}`));
    await c.ok(m1, ['service', 'update', '--detach', '--label-add', 'rev=2', `b-${sfx}`]);
    const before = await services(c, m1);
    t.is(before.size, 2);

    await c.killHost(m2);
    await c.killHost(m3);
    const failed = await waitFor('writes refused without a quorum', async () => {
      const r = await m1.docker(create(`c-${sfx}`), { timeoutMs: 20_000 });
      return r.code !== 0 && r.stderr.includes(NO_LEADER) ? r.stderr : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    t.true(failed.includes(NO_LEADER));

    const addr = `${c.hostOf(m1).addr}:2377`;
    const id = (await c.ok(m1, ['swarm', 'init', '--force-new-cluster', '--advertise-addr', addr, '--listen-addr', addr], 90_000)).trim();
    t.regex(id, /Swarm initialized/);

    await eventually(m1, create(`c-${sfx}`), 90_000);
    const after = await services(c, m1);
    for (const [name, version] of before) t.is(after.get(name), version, `${name} with its spec version`);
    t.true(after.has(`c-${sfx}`));
    const st = await waitFor('m1 Leader, the others Unreachable', async () => {
      const s = await c.managerStatus(m1);
      return s.get(m1.hostname) === 'Leader' && s.get(m2.hostname) === 'Unreachable' && s.get(m3.hostname) === 'Unreachable' ? s : undefined;
    }, { timeoutMs: 30_000 });
    t.is(st.size, 3, 'the lost managers keep their node objects');
  } catch (err) {
    t.log(logsOf(c));
    throw err;
  }
});

test.serial('promote: a worker becomes a Reachable manager and keeps the swarm writable when the leader host dies', async (t) => {
  const c = await createHaCluster(4, 2);
  t.teardown(() => c.destroy());
  const [m1, m2, , w4] = c.agents as [TestAgent, TestAgent, TestAgent, TestAgent];
  const w3 = c.agents[2]!;
  try {
    await c.ok(m1, create(`p-${sfx}`));
    const tasksBefore = (await c.ok(m1, ['service', 'ps', '-q', '--filter', 'desired-state=running', `p-${sfx}`])).trim();
    await c.ok(m1, ['node', 'promote', w3.hostname]);
    const st = await waitFor('the promoted worker Reachable', async () => {
      const s = await c.managerStatus(m1);
      return s.get(w3.hostname) === 'Reachable' ? s : undefined;
    }, { timeoutMs: 90_000 });
    t.is(st.get(w4.hostname), '', 'the other worker stays a worker');
    // the promoted node serves the manager API itself, and nothing was restarted
    t.regex(await eventually(w3, ['node', 'ls']), new RegExp(w3.hostname));
    t.is((await c.ok(m1, ['service', 'ps', '-q', '--filter', 'desired-state=running', `p-${sfx}`])).trim(), tasksBefore);
    const leader = (await c.leader(m1))!;
    const sr = await leader.docker(['secret', 'create', `s-${sfx}`, '-'], { input: 'kept across managers' });
    t.is(sr.code, 0, sr.stderr);
    const survivor = [m1, m2, w3].find((a) => a !== leader)!;
    await c.killHost(leader);
    await eventually(survivor, create(`q-${sfx}`), 90_000);
    t.true((await services(c, survivor)).has(`p-${sfx}`));
    // a secret sealed under the old leader opens under the new one
    await eventually(survivor, ['service', 'create', '--detach', '--name', `sec-${sfx}`, '--secret', `s-${sfx}`, '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600'], 60_000);
    const content = await waitFor('the secret inside the task', async () => {
      const ids = (await hostDocker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=sec-${sfx}`])).stdout.split('\n').filter(Boolean);
      if (!ids.length) return undefined;
      const r = await hostDocker(['exec', ids[0], 'cat', `/run/secrets/s-${sfx}`]);
      return r.code === 0 ? r.stdout : undefined;
    }, { timeoutMs: 90_000 });
    t.is(content, 'kept across managers');
  } catch (err) {
    t.log(logsOf(c));
    throw err;
  }
});
