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
