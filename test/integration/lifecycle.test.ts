// Service lifecycle proofs with the stock docker CLI on a one-node swarm:
// an update's progress display reaches "converged"; `service rollback`
// restores the previous spec; an update whose health check fails rolls back
// by itself; a file on a named volume survives a task restart on the node;
// a read-only bind mount cannot be written.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { hostDocker } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

const sfx = Math.random().toString(36).slice(2, 7);
const vol = `lcvol${sfx}`;
let a: TestAgent;
let bindDir: string;

async function ok(args: string[], timeoutMs?: number): Promise<string> {
  const r = await a.docker(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

const image = async (svc: string) => (await ok(['service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', svc])).trim();
const running = async (svc: string) => (await hostDocker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${svc}`])).stdout.split('\n').filter(Boolean);
const replicas = (svc: string, want: string) => waitFor(`${svc} ${want}`, async () =>
  (await ok(['service', 'ls', '--filter', `name=${svc}`, '--format', '{{.Name}} {{.Replicas}}'])).split('\n').includes(`${svc} ${want}`), { timeoutMs: 60_000 });

test.before(async () => {
  a = await startAgent('life');
  await ok(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  bindDir = mkdtempSync(join(tmpdir(), 'shoal-bind-'));
  writeFileSync(join(bindDir, 'hello.txt'), 'from the host\n');
});

test.after.always(async () => {
  await a?.cleanup();
  await hostDocker(['volume', 'rm', '-f', vol]);
  if (bindDir) rmSync(bindDir, { recursive: true, force: true });
});

test.serial('update progress reaches converged; service rollback restores the previous spec', async (t) => {
  const svc = `upd${sfx}`;
  await ok(['service', 'create', '--detach', '--name', svc, '--replicas', '2', '--stop-grace-period', '1s',
    '--update-parallelism', '1', '--update-delay', '0s', '--update-monitor', '1s', 'local/busybox:1', 'sleep', '3600']);
  await replicas(svc, '2/2');
  const upd = await ok(['service', 'update', '--image', 'local/busybox:2', svc], 120_000);
  t.regex(upd, /verify: Service \S+ converged/);
  t.is(await image(svc), 'local/busybox:2');
  t.regex(await ok(['service', 'inspect', '--format', '{{.UpdateStatus.State}}', svc]), /completed/);
  const rb = await ok(['service', 'rollback', svc], 120_000);
  t.regex(rb, /rollback: manually requested rollback/);
  t.regex(rb, /verify: Service \S+ converged/);
  t.is(await image(svc), 'local/busybox:1');
  // the CLI stops at converged tasks; the status turns rollback_completed after the monitor period
  await waitFor('rollback_completed', async () => (await ok(['service', 'inspect', '--format', '{{.UpdateStatus.State}}', svc])).trim() === 'rollback_completed', { timeoutMs: 30_000 });
  await ok(['service', 'rm', svc]);
  t.pass();
});

test.serial('an update whose health check fails rolls back by itself', async (t) => {
  const svc = `hc${sfx}`;
  await ok(['service', 'create', '--detach', '--name', svc, '--replicas', '1', '--stop-grace-period', '1s',
    '--health-cmd', 'true', '--health-interval', '1s', '--health-retries', '1',
    '--update-failure-action', 'rollback', '--update-monitor', '5s', 'local/busybox:1', 'sleep', '3600']);
  await replicas(svc, '1/1');
  await ok(['service', 'update', '--detach', '--image', 'local/busybox:2', '--health-cmd', 'false', svc]);
  const state = await waitFor('rollback_completed', async () => {
    const s = (await ok(['service', 'inspect', '--format', '{{.UpdateStatus.State}}', svc])).trim();
    return s === 'rollback_completed' ? s : undefined;
  }, { timeoutMs: 45_000 });
  t.is(state, 'rollback_completed');
  t.is(await image(svc), 'local/busybox:1');
  t.is((await ok(['service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}}', svc])).trim(), '["CMD-SHELL","true"]');
  await replicas(svc, '1/1');
  await ok(['service', 'rm', svc]);
});

test.serial('the health check from the CLI reaches the container: the task fails as unhealthy', async (t) => {
  const svc = `unh${sfx}`;
  await ok(['service', 'create', '--detach', '--name', svc, '--stop-grace-period', '1s', '--restart-max-attempts', '1',
    '--health-cmd', 'false', '--health-interval', '1s', '--health-retries', '1', 'local/busybox:1', 'sleep', '3600']);
  const err = await waitFor('a task failed as unhealthy', async () =>
    (await ok(['service', 'ps', '--no-trunc', '--format', '{{.Error}}', svc])).split('\n').find((l) => /unhealthy/.test(l)), { timeoutMs: 60_000 });
  t.regex(err, /task: unhealthy container/);
  t.is((await ok(['service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}}', svc])).trim(), '["CMD-SHELL","false"]');
  await ok(['service', 'rm', svc]);
});

test.serial('a file on a named volume survives a task restart on the same node', async (t) => {
  const svc = `vol${sfx}`;
  await ok(['service', 'create', '--detach', '--name', svc, '--stop-grace-period', '1s', '--mount', `type=volume,src=${vol},dst=/data`, 'local/busybox:1', 'sleep', '3600']);
  const first = await waitFor('task container', async () => (await running(svc))[0], { timeoutMs: 60_000 });
  t.is((await hostDocker(['exec', first, 'sh', '-c', 'echo kept > /data/f'])).code, 0);
  await hostDocker(['kill', first]);
  const second = await waitFor('a new task container', async () => (await running(svc)).find((id) => id !== first), { timeoutMs: 60_000 });
  t.not(second, first);
  t.is((await hostDocker(['exec', second, 'cat', '/data/f'])).stdout, 'kept\n');
  t.regex((await hostDocker(['volume', 'inspect', '--format', '{{.Name}}', vol])).stdout, new RegExp(vol));
  await ok(['service', 'rm', svc]);
  await waitFor('containers gone', async () => (await running(svc)).length === 0, { timeoutMs: 60_000 });
});

test.serial('a read-only bind mount can be read and cannot be written', async (t) => {
  const svc = `bind${sfx}`;
  await ok(['service', 'create', '--detach', '--name', svc, '--stop-grace-period', '1s',
    '--mount', `type=bind,source=${bindDir},destination=/container_data,readonly`, 'local/busybox:1', 'sleep', '3600']);
  const cid = await waitFor('task container', async () => (await running(svc))[0], { timeoutMs: 60_000 });
  t.is((await hostDocker(['exec', cid, 'cat', '/container_data/hello.txt'])).stdout, 'from the host\n');
  const w = await hostDocker(['exec', cid, 'sh', '-c', 'echo x > /container_data/new.txt']);
  t.not(w.code, 0);
  t.regex(w.stderr, /Read-only file system/);
  await ok(['service', 'rm', svc]);
});
