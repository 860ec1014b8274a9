// The walkthrough, end to end: a real `shoal agent`, the stock docker
// CLI against its socket, containers really running in the host's dockerd.
import test from 'ava';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { hostDocker, nodeContainers } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

let agent: TestAgent;

test.before(async () => {
  agent = await startAgent('single');
});
test.after.always(async () => {
  await agent?.cleanup();
});

async function ok(args: string[]): Promise<string> {
  const r = await agent.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function runningTasks(service: string): Promise<number> {
  const out = await ok(['service', 'ps', service, '--filter', 'desired-state=running', '--format', '{{.CurrentState}}']);
  return out.split('\n').filter((l) => l.startsWith('Running')).length;
}

test.serial('swarm init, info, node ls', async (t) => {
  t.regex(await ok(['info', '--format', '{{.Swarm.LocalNodeState}}']), /inactive/);
  const init = await ok(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  t.regex(init, /Swarm initialized: current node \([a-z0-9]{25}\) is now a manager\./);
  t.regex(init, /docker swarm join --token SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25} 127\.0\.0\.1:\d+/);
  const again = await agent.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  t.not(again.code, 0);
  t.regex(again.stderr, /This node is already part of a swarm/);
  t.regex(await ok(['info']), /Swarm: active/);
  const ls = await ok(['node', 'ls']);
  const self = ls.split('\n').find((l) => l.includes(agent.hostname));
  t.truthy(self, ls);
  t.regex(self!, /^[a-z0-9]{25} \*\s+\S+\s+Ready\s+Active\s+Leader\s+\S+/);
  t.regex(await ok(['swarm', 'join-token', 'worker']), /docker swarm join --token SWMTKN-1-/);
  const self2 = await ok(['node', 'inspect', 'self', '--pretty']);
  t.regex(self2, /Hostname:\s+\S+/);
});

test.serial('service create converges and containers carry Swarm labels', async (t) => {
  const out = await ok(['service', 'create', '--replicas', '2', '--name', 'web', '--stop-grace-period', '1s',
    'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  t.regex(out, /verify: Service (web|[a-z0-9]{25}) converged/);
  t.regex(await ok(['service', 'ls']), /web\s+replicated\s+2\/2\s+local\/busybox:1/);
  const ps = await ok(['service', 'ps', 'web']);
  t.regex(ps, /web\.1\s+local\/busybox:1\s+\S+\s+Running\s+Running/);
  t.regex(ps, /web\.2\s+local\/busybox:1\s+\S+\s+Running\s+Running/);
  const ids = await nodeContainers(agent.nodeId()!);
  t.is(ids.length, 2);
  const labels = JSON.parse((await hostDocker(['inspect', '--format', '{{json .Config.Labels}}', ids[0]])).stdout);
  t.is(labels['com.docker.swarm.service.name'], 'web');
  t.regex(labels['com.docker.swarm.service.id'], /^[a-z0-9]{25}$/);
  t.regex(labels['com.docker.swarm.task.id'], /^[a-z0-9]{25}$/);
  t.is(labels['com.docker.swarm.node.id'], agent.nodeId());
  t.regex(labels['com.docker.swarm.task.name'], /^web\.[12]\.[a-z0-9]{25}$/);
  t.regex(await ok(['service', 'inspect', '--pretty', 'web']), /Replicated\s*\n\s*Replicas:\s+2/);
});

test.serial('scale, update replicas, update image', async (t) => {
  t.regex(await ok(['service', 'scale', 'web=5']), /web scaled to 5[\s\S]*verify: Service web converged/);
  t.is(await runningTasks('web'), 5);
  await ok(['service', 'update', '--replicas', '3', 'web']);
  t.is(await runningTasks('web'), 3);
  await waitFor('3 containers', async () => (await nodeContainers(agent.nodeId()!)).length === 3);
  const upd = await ok(['service', 'update', '--image', 'local/busybox:2', 'web']);
  t.regex(upd, /verify: Service web converged/);
  const images = await ok(['service', 'ps', 'web', '--filter', 'desired-state=running', '--format', '{{.Image}}']);
  t.deepEqual(images.trim().split('\n'), ['local/busybox:2', 'local/busybox:2', 'local/busybox:2']);
  const history = await ok(['service', 'ps', 'web', '--format', '{{.Name}} {{.Image}} {{.DesiredState}}']);
  t.regex(history, /web\.1 local\/busybox:1 Shutdown/);
});

test.serial('global service runs one task on the node', async (t) => {
  const out = await ok(['service', 'create', '--mode', 'global', '--name', 'g1', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  t.regex(out, /verify: Service (g1|[a-z0-9]{25}) converged/);
  t.regex(await ok(['service', 'ls']), /g1\s+global\s+1\/1/);
});

test.serial('a killed task container is replaced', async (t) => {
  const before = await ok(['service', 'ps', 'g1', '-q', '--filter', 'desired-state=running']);
  const cid = (await hostDocker(['ps', '-q', '--filter', `label=com.docker.swarm.task.id=${before.trim()}`])).stdout.trim();
  t.truthy(cid);
  await hostDocker(['kill', cid]);
  await waitFor('a new g1 task running', async () => {
    const now = (await ok(['service', 'ps', 'g1', '-q', '--filter', 'desired-state=running'])).trim();
    return now && now !== before.trim() && (await runningTasks('g1')) === 1;
  });
  t.regex(await ok(['service', 'ps', 'g1']), /Failed|Shutdown/);
});

test.serial('kill -9 of the agent loses no acknowledged write and leaves exactly the right containers', async (t) => {
  await ok(['service', 'create', '--detach', '--replicas', '2', '--name', 'k9', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('k9 2/2', async () => (await ok(['service', 'ls', '--filter', 'name=k9', '--format', '{{.Replicas}}'])).trim() === '2/2');
  await ok(['service', 'scale', '--detach', 'k9=4']);
  await agent.kill('SIGKILL'); // right after the write was acknowledged
  // while the agent is down a task container dies; nobody may notice until the restart
  const k9 = async () => (await hostDocker(['ps', '-q', '--filter', `label=com.docker.swarm.node.id=${agent.nodeId()}`, '--filter', 'label=com.docker.swarm.service.name=k9'])).stdout.split('\n').filter(Boolean);
  const survivors = await k9();
  if (survivors.length) await hostDocker(['kill', survivors[0]]);
  await agent.restart();
  t.regex(await ok(['service', 'inspect', '--format', '{{.Spec.Mode.Replicated.Replicas}}', 'k9']), /^4/);
  await waitFor('k9 4/4', async () => (await ok(['service', 'ls', '--filter', 'name=k9', '--format', '{{.Replicas}}'])).trim() === '4/4', { timeoutMs: 60_000 });
  await waitFor('exactly 4 k9 containers', async () => (await k9()).length === 4, { timeoutMs: 30_000 });
  const tasks = (await ok(['service', 'ps', 'k9', '-q', '--filter', 'desired-state=running'])).trim().split('\n').sort();
  const labelled = [];
  for (const c of await k9()) labelled.push((await hostDocker(['inspect', '--format', '{{index .Config.Labels "com.docker.swarm.task.id"}}', c])).stdout.trim().slice(0, 12));
  t.deepEqual(labelled.sort(), tasks.map((x) => x.slice(0, 12)), 'one container per running task, no duplicates, no orphans');
  await ok(['service', 'rm', 'k9']);
});

test.serial('service rm removes services and their containers', async (t) => {
  const out = await ok(['service', 'rm', 'web', 'g1']);
  t.deepEqual(out.trim().split('\n'), ['web', 'g1']);
  t.notRegex(await ok(['service', 'ls']), /web|g1/);
  await waitFor('containers removed', async () => (await nodeContainers(agent.nodeId()!, true)).length === 0, { timeoutMs: 60_000 });
  t.pass();
});
