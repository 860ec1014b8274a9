// Many hosts on one machine: a manager and workers as separate `shoal agent`
// processes sharing the host's dockerd, joined with the stock docker CLI over
// the mutual-TLS management port; failures are real process kills.
import test from 'ava';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { nodeContainers } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

let mgr: TestAgent;
let w1: TestAgent;
let w2: TestAgent;
let token = '';
let addr = '';

async function ok(a: TestAgent, args: string[]): Promise<string> {
  const r = await a.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function nodeStatus(hostname: string): Promise<string | undefined> {
  const out = await ok(mgr, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}}']);
  return out.split('\n').find((l) => l.startsWith(hostname + ' '))?.split(' ').slice(1).join(' ');
}

test.before(async () => {
  const port = await freePort();
  addr = `127.0.0.1:${port}`;
  mgr = await startAgent('mgr', ['--listen-addr', addr]);
  w1 = await startAgent('w1');
  w2 = await startAgent('w2');
  const init = await ok(mgr, ['swarm', 'init', '--advertise-addr', addr]);
  token = /--token (\S+)/.exec(init)![1];
});

test.after.always(async () => {
  await Promise.all([w1?.cleanup(), w2?.cleanup(), mgr?.cleanup()]);
});

test.serial('workers join with the token; a wrong token is refused', async (t) => {
  const bad = await w1.docker(['swarm', 'join', '--token', token.replace(/.{5}$/, 'aaaaa'), addr]);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /valid join token is necessary/);
  t.regex(await ok(w1, ['swarm', 'join', '--token', token, addr]), /This node joined a swarm as a worker/);
  t.regex(await ok(w2, ['swarm', 'join', '--token', token, addr]), /This node joined a swarm as a worker/);
  const again = await w1.docker(['swarm', 'join', '--token', token, addr]);
  t.regex(again.stderr, /already part of a swarm/);
  await waitFor('both workers ready', async () => (await nodeStatus(w1.hostname)) === 'Ready Active' && (await nodeStatus(w2.hostname)) === 'Ready Active');
  const ls = await ok(mgr, ['node', 'ls']);
  t.is(ls.trim().split('\n').length, 4, ls);
  const onWorker = await w1.docker(['node', 'ls']);
  t.regex(onWorker.stderr, /This node is not a swarm manager\. Worker nodes can't be used to view or modify cluster state/);
  t.regex(await ok(w1, ['info']), /Swarm: active/);
});

test.serial('a service spreads over the nodes, containers on each node carry its node id', async (t) => {
  await ok(mgr, ['service', 'create', '--detach', '--replicas', '6', '--name', 'spread', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('6 running', async () => (await ok(mgr, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '6/6', { timeoutMs: 60_000 });
  for (const a of [mgr, w1, w2]) t.is((await nodeContainers(a.nodeId()!)).length, 2, `2 tasks on ${a.hostname}`);
});

test.serial('constraints place tasks by label and role; binpack fills one node before the next', async (t) => {
  await ok(mgr, ['node', 'update', '--label-add', 'zone=blue', w2.hostname]);
  await ok(mgr, ['service', 'create', '--detach', '--replicas', '3', '--name', 'blue', '--constraint', 'node.labels.zone==blue', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await ok(mgr, ['service', 'create', '--detach', '--replicas', '2', '--name', 'onmgr', '--constraint', 'node.role==manager', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('blue 3/3 and onmgr 2/2', async () => {
    const out = await ok(mgr, ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}']);
    return out.includes('blue 3/3') && out.includes('onmgr 2/2');
  }, { timeoutMs: 60_000 });
  const nodesOf = async (svc: string) => (await ok(mgr, ['service', 'ps', svc, '--filter', 'desired-state=running', '--format', '{{.Node}}'])).trim().split('\n');
  t.deepEqual([...new Set(await nodesOf('blue'))], [w2.hostname]);
  t.deepEqual([...new Set(await nodesOf('onmgr'))], [mgr.hostname]);
  const none = await ok(mgr, ['service', 'create', '--detach', '--name', 'nowhere', '--constraint', 'node.labels.zone==red', 'local/busybox:1', 'sleep', '3600']);
  t.truthy(none);
  const err = await waitFor('pending with a reason', async () => (await ok(mgr, ['service', 'ps', 'nowhere', '--no-trunc', '--format', '{{.CurrentState}} {{.Error}}'])).match(/Pending.*no suitable node.*/)?.[0]);
  t.regex(err, /no suitable node/);
  // binpack: each task reserves a whole CPU of the node's CPUs; the fullest node that still fits goes first
  const cpus = Number((await ok(mgr, ['node', 'inspect', '--format', '{{.Description.Resources.NanoCPUs}}', w1.hostname])).trim()) / 1e9;
  await ok(mgr, ['service', 'create', '--detach', '--replicas', String(cpus), '--name', 'packed', '--label', 'shoal.strategy=binpack', '--reserve-cpu', '1',
    '--constraint', 'node.role==worker', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('packed running', async () => (await ok(mgr, ['service', 'ls', '--filter', 'name=packed', '--format', '{{.Replicas}}'])).trim() === `${cpus}/${cpus}`, { timeoutMs: 60_000 });
  t.is(new Set(await nodesOf('packed')).size, 1, 'binpack put every task on one node');
  for (const svc of ['blue', 'onmgr', 'nowhere', 'packed']) await ok(mgr, ['service', 'rm', svc]);
  await ok(mgr, ['node', 'update', '--label-rm', 'zone', w2.hostname]);
});

test.serial('a restarted manager: workers keep their tasks running meanwhile and reconcile after', async (t) => {
  // the services removed just before are still stopping: wait for w2 to hold only its 'spread' tasks
  const onW2 = async () => (await ok(mgr, ['service', 'ps', 'spread', '--filter', 'desired-state=running', '--format', '{{.Node}}'])).split('\n').filter((l) => l === w2.hostname).length;
  await waitFor('w2 runs only spread', async () => (await nodeContainers(w2.nodeId()!)).length === await onW2(), { timeoutMs: 60_000 });
  const before = (await nodeContainers(w2.nodeId()!)).sort();
  t.true(before.length > 0);
  await mgr.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 3000));
  t.deepEqual((await nodeContainers(w2.nodeId()!)).sort(), before, 'nothing stopped while the manager was away');
  await mgr.restart();
  await waitFor('workers ready again', async () => (await nodeStatus(w1.hostname)) === 'Ready Active' && (await nodeStatus(w2.hostname)) === 'Ready Active', { timeoutMs: 30_000 });
  await waitFor('6/6 again', async () => (await ok(mgr, ['service', 'ls', '--filter', 'name=spread', '--format', '{{.Replicas}}'])).trim() === '6/6', { timeoutMs: 60_000 });
  t.deepEqual((await nodeContainers(w2.nodeId()!)).sort(), before, 'the same containers, adopted, not replaced');
});

test.serial('drain moves tasks away; active again does not move them back', async (t) => {
  await ok(mgr, ['node', 'update', '--availability', 'drain', w2.hostname]);
  await waitFor('no containers on w2', async () => (await nodeContainers(w2.nodeId()!)).length === 0, { timeoutMs: 60_000 });
  await waitFor('6 running', async () => (await ok(mgr, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '6/6', { timeoutMs: 60_000 });
  await ok(mgr, ['node', 'update', '--availability', 'active', w2.hostname]);
  await new Promise((r) => setTimeout(r, 1500));
  t.is((await nodeContainers(w2.nodeId()!)).length, 0);
});

test.serial('a killed worker goes down and its tasks run elsewhere; back, it gets nothing moved back', async (t) => {
  const victim = w1.nodeId()!;
  const before = (await nodeContainers(victim)).length;
  t.true(before > 0);
  await w1.kill('SIGKILL');
  await waitFor('w1 down', async () => (await nodeStatus(w1.hostname))?.startsWith('Down'), { timeoutMs: 30_000 });
  await waitFor('6 running on the others', async () => {
    const out = await ok(mgr, ['service', 'ps', 'spread', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
    const rows = out.trim().split('\n').filter((l) => l.includes('Running'));
    return rows.length === 6 && rows.every((l) => !l.startsWith(w1.hostname + ' '));
  }, { timeoutMs: 60_000 });
  await w1.restart();
  await waitFor('w1 ready again', async () => (await nodeStatus(w1.hostname)) === 'Ready Active', { timeoutMs: 30_000 });
  await waitFor('its stale containers stop', async () => (await nodeContainers(victim)).length === 0, { timeoutMs: 60_000 });
  t.pass();
});

test.serial('token rotation refuses the old token; node rm', async (t) => {
  await ok(mgr, ['swarm', 'join-token', '--rotate', 'worker']);
  const fresh = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
  t.not(fresh, token);
  await ok(w2, ['swarm', 'leave']);
  const old = await w2.docker(['swarm', 'join', '--token', token, addr]);
  t.not(old.code, 0);
  await waitFor('w2 down', async () => (await nodeStatus(w2.hostname))?.startsWith('Down'), { timeoutMs: 30_000 });
  await ok(mgr, ['node', 'rm', w2.hostname]);
  t.is(await nodeStatus(w2.hostname), undefined);
  t.regex(await ok(w2, ['swarm', 'join', '--token', fresh, addr]), /joined a swarm/);
  await ok(mgr, ['service', 'rm', 'spread']);
});
