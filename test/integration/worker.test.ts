// Integration tests for the Worker against the real dockerd: task states as
// Docker names them, exits, missing images, shutdown, removal, adoption after
// an agent restart, orphans, health checks, mounts and parallel starts.
// Every test uses its own fake node id, so tests never touch each other's containers.
import test from 'ava';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '../../agent/worker/worker.js';
import { newId, nowIso } from '../../agent/common/ids.js';
import { TASK_STATES, type ContainerSpec, type Task, type TaskState, type TaskStatus } from '../../agent/common/types.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const RUN = `wk-${randomBytes(4).toString('hex')}`;
const rank = (s: TaskState) => TASK_STATES.indexOf(s);

function task(nodeId: string, spec: Partial<ContainerSpec> = {}, extra: Partial<Task> = {}): Task {
  return {
    ID: newId(), Version: { Index: 1 }, CreatedAt: nowIso(), UpdatedAt: nowIso(), ServiceID: newId(), Slot: 1, NodeID: nodeId,
    Spec: { ContainerSpec: { Image: 'local/busybox:1', Command: ['sleep', '3600'], StopGracePeriod: 1e9, Labels: { 'shoal.test': RUN }, ...spec } },
    Status: { Timestamp: nowIso(), State: 'assigned', Message: 'scheduler assigned task to node' }, DesiredState: 'running',
    ...extra,
  };
}

async function until<T>(what: string | (() => string), fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A worker on a fresh fake node, recording every status report. */
function setup(t: { teardown(fn: () => void | Promise<void>): void }, nodeId = `node-${RUN}-${randomBytes(3).toString('hex')}`, extra: Partial<ConstructorParameters<typeof Worker>[0]> = {}) {
  const reports = new Map<string, TaskStatus[]>();
  const worker = new Worker({
    docker, nodeId, serviceName: () => 'svc',
    report: (ups) => { for (const u of ups) { const l = reports.get(u.taskId) ?? []; l.push(u.status); reports.set(u.taskId, l); } },
    ...extra,
  });
  t.teardown(() => worker.stop());
  const last = (id: string) => reports.get(id)?.at(-1);
  const waitState = (id: string, state: TaskState) =>
    until(() => `task ${id} ${state} (now ${last(id)?.State}: ${last(id)?.Err ?? ''})`, () => {
      const s = last(id);
      return s && s.State === state ? s : undefined;
    });
  return { worker, nodeId, reports, last, waitState };
}

const containersOf = async (nodeId: string) =>
  docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.node.id=${nodeId}`] } });

test.after.always(async () => {
  const cs = await docker.listContainers({ all: true, filters: { label: [`shoal.test=${RUN}`] } });
  await Promise.allSettled(cs.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  const vols = await docker.listVolumes({ filters: { label: [`shoal.test=${RUN}`] } });
  await Promise.allSettled((vols.Volumes ?? []).map((v) => docker.getVolume(v.Name).remove()));
});

test('a task runs through Docker\'s states to running, in order, with container status', async (t) => {
  const { worker, nodeId, reports, waitState } = setup(t);
  await worker.start();
  const tk = task(nodeId);
  worker.setAssignments([tk]);
  const running = await waitState(tk.ID, 'running');
  const seen = reports.get(tk.ID)!.map((s) => s.State);
  t.deepEqual(seen, ['accepted', 'preparing', 'ready', 'starting', 'running']);
  t.deepEqual(reports.get(tk.ID)!.map((s) => s.Message), ['accepted', 'preparing', 'prepared', 'starting', 'started']);
  t.true(running.ContainerStatus!.PID! > 0);
  t.truthy(running.Timestamp);
  const info = await docker.getContainer(running.ContainerStatus!.ContainerID!).inspect();
  t.is(info.Name, `/svc.1.${tk.ID}`);
  t.true(info.State.Running);
  t.is(info.HostConfig.NetworkMode, 'none');
  t.is(info.Config.Labels['com.docker.swarm.service.name'], 'svc');
  t.is(info.Config.Labels['com.docker.swarm.task.id'], tk.ID);
  // setAssignments is idempotent: no second container
  worker.setAssignments([tk]);
  worker.setAssignments([{ ...tk, Status: running }]);
  await new Promise((r) => setTimeout(r, 300));
  t.is((await containersOf(nodeId)).length, 1);
});

test('exit 0 completes; exit 3 fails with the exit code', async (t) => {
  const { worker, nodeId, waitState, reports } = setup(t);
  await worker.start();
  const ok = task(nodeId, { Command: ['true'] });
  const bad = task(nodeId, { Command: ['sh', '-c', 'exit 3'] }, { Slot: 2 });
  worker.setAssignments([ok, bad]);
  const done = await waitState(ok.ID, 'complete');
  t.is(done.Message, 'finished');
  t.is(done.ContainerStatus?.ExitCode, 0);
  const failed = await waitState(bad.ID, 'failed');
  t.is(failed.Err, 'task: non-zero exit (3)');
  t.is(failed.ContainerStatus?.ExitCode, 3);
  for (const id of [ok.ID, bad.ID]) {
    const states = reports.get(id)!.map((s) => rank(s.State));
    t.deepEqual(states, [...states].sort((a, b) => a - b), 'states never go backwards');
  }
});

test('a missing image rejects the task with Docker\'s error', async (t) => {
  const { worker, nodeId, waitState } = setup(t);
  await worker.start();
  const tk = task(nodeId, { Image: `local/absent-${RUN}:9` });
  worker.setAssignments([tk]);
  const s = await waitState(tk.ID, 'rejected');
  t.is(s.Err, `No such image: local/absent-${RUN}:9`);
  t.is((await containersOf(nodeId)).length, 0);
});

test('desired shutdown stops the container with its grace period and reports shutdown; leaving the set removes it', async (t) => {
  const { worker, nodeId, waitState } = setup(t);
  await worker.start();
  const tk = task(nodeId);
  worker.setAssignments([tk]);
  const running = await waitState(tk.ID, 'running');
  const id = running.ContainerStatus!.ContainerID!;
  worker.setAssignments([{ ...tk, DesiredState: 'shutdown' }]);
  const down = await waitState(tk.ID, 'shutdown');
  t.is(down.Message, 'shutdown');
  const info = await docker.getContainer(id).inspect();
  t.false(info.State.Running, 'stopped');
  t.is(info.State.ExitCode, 137, 'sleep ignores SIGTERM: killed after the grace period');

  worker.setAssignments([]);
  await until('container removed', async () => (await containersOf(nodeId)).length === 0);
  t.pass();
});

test('a new worker adopts a running container, re-reports running, and removes orphans', async (t) => {
  const nodeId = `node-${RUN}-adopt`;
  const first = setup(t, nodeId);
  await first.worker.start();
  const keep = task(nodeId);
  const orphan = task(nodeId, {}, { Slot: 2 });
  first.worker.setAssignments([keep, orphan]);
  const running = await first.waitState(keep.ID, 'running');
  await first.waitState(orphan.ID, 'running');
  await first.worker.stop();

  // the agent "restarts": a new Worker over the same node id
  const attached: string[] = [];
  const second = setup(t, nodeId, { hooks: { afterStart: async (_task, c) => { attached.push(c.id); } } });
  await second.worker.start();
  second.worker.setAssignments([{ ...keep, Status: running }]);
  const again = await second.waitState(keep.ID, 'running');
  t.is(again.ContainerStatus?.ContainerID, running.ContainerStatus?.ContainerID, 'same container');
  t.deepEqual(attached, [running.ContainerStatus!.ContainerID!], 'afterStart re-run for the adopted container');
  await until('orphan removed', async () => (await containersOf(nodeId)).length === 1);
  const left = await containersOf(nodeId);
  t.is(left[0]!.Id, running.ContainerStatus!.ContainerID!);
  t.is(left[0]!.State, 'running');
  t.is(second.reports.get(orphan.ID), undefined, 'orphans are not reported');
});

test('a health check keeps the task in starting until healthy; unhealthy fails it', async (t) => {
  const { worker, nodeId, waitState, reports } = setup(t);
  await worker.start();
  const healthy = task(nodeId, {
    Command: ['sh', '-c', 'sleep 1; touch /tmp/ok; exec sleep 3600'],
    // failures during the start period do not count, so a slow machine cannot make it unhealthy
    HealthCheck: { Test: ['CMD-SHELL', 'test -f /tmp/ok'], Interval: 2e8, Timeout: 5e9, Retries: 3, StartPeriod: 120e9 },
  });
  const sick = task(nodeId, { HealthCheck: { Test: ['CMD', 'false'], Interval: 2e8, Timeout: 1e9, Retries: 1 } }, { Slot: 2 });
  worker.setAssignments([healthy, sick]);
  await waitState(healthy.ID, 'running');
  const states = reports.get(healthy.ID)!.map((s) => s.State);
  t.deepEqual(states, ['accepted', 'preparing', 'ready', 'starting', 'running']);
  const info = await docker.getContainer(reports.get(healthy.ID)!.at(-1)!.ContainerStatus!.ContainerID!).inspect();
  t.is(info.State.Health?.Status, 'healthy');

  const failed = await waitState(sick.ID, 'failed');
  t.is(failed.Err, 'task: unhealthy container');
  t.false(reports.get(sick.ID)!.some((s) => s.State === 'running'), 'never reported running');
});

test('volume, bind and tmpfs mounts are visible inside the container', async (t) => {
  const { worker, nodeId, waitState } = setup(t);
  await worker.start();
  const dir = mkdtempSync(join(tmpdir(), 'shoal-wk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in'), 'from-host\n');
  const vol = `shoal-${RUN}-vol`;
  const tk = task(nodeId, {
    Command: ['sh', '-c', 'cat /b/in > /b/seen; echo persisted > /v/file; cat /v/file >> /b/seen; cat /proc/mounts > /b/mounts; exec sleep 3600'],
    Mounts: [
      { Type: 'volume', Source: vol, Target: '/v', VolumeOptions: { Labels: { 'shoal.test': RUN, purpose: 'test' } } },
      { Type: 'bind', Source: dir, Target: '/b' },
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 4 << 20, Mode: 0o700 } },
    ],
  });
  worker.setAssignments([tk]);
  await waitState(tk.ID, 'running');
  const mounts = await until('mounts file', () => { try { const m = readFileSync(join(dir, 'mounts'), 'utf8'); return m.includes(' /t ') ? m : undefined; } catch { return undefined; } });
  t.is(readFileSync(join(dir, 'seen'), 'utf8'), 'from-host\npersisted\n');
  const tmpfsLine = mounts.split('\n').find((l) => l.split(' ')[1] === '/t')!;
  t.regex(tmpfsLine, /^tmpfs \/t tmpfs .*size=4096k/);
  t.regex(tmpfsLine, /mode=700/);
  const v = await docker.getVolume(vol).inspect();
  t.like(v.Labels, { purpose: 'test' });
});

test('many tasks start in parallel, bounded, one container each', async (t) => {
  const { worker, nodeId, waitState } = setup(t, undefined, { maxParallelStarts: 3 });
  await worker.start();
  const tasks = Array.from({ length: 8 }, (_, i) => task(nodeId, {}, { Slot: i + 1 }));
  worker.setAssignments(tasks);
  for (const tk of tasks) await waitState(tk.ID, 'running');
  const cs = await containersOf(nodeId);
  t.is(cs.length, 8);
  t.is(new Set(cs.map((c) => c.Labels['com.docker.swarm.task.id'])).size, 8);
});

test('a failing afterStart hook fails the task and stops its container; beforeRemove runs before removal', async (t) => {
  const removed: string[] = [];
  const { worker, nodeId, waitState } = setup(t, undefined, {
    hooks: {
      afterStart: async (tk) => { if (tk.Slot === 2) throw new Error('no route to overlay'); },
      beforeRemove: async (tk) => { removed.push(tk.ID); },
    },
  });
  await worker.start();
  const good = task(nodeId);
  const bad = task(nodeId, {}, { Slot: 2 });
  worker.setAssignments([good, bad]);
  await waitState(good.ID, 'running');
  const failed = await waitState(bad.ID, 'failed');
  t.is(failed.Err, 'task: network attach failed: no route to overlay');
  const info = await docker.getContainer(failed.ContainerStatus!.ContainerID!).inspect();
  t.false(info.State.Running);

  // desired `remove`: stopped, reported shutdown, container removed
  worker.setAssignments([{ ...good, DesiredState: 'remove' }, bad]);
  await waitState(good.ID, 'shutdown');
  await until('removed container', async () => (await containersOf(nodeId)).length === 1);
  t.deepEqual(removed, [good.ID]);
  worker.setAssignments([]);
  await until('all removed', async () => (await containersOf(nodeId)).length === 0);
  t.deepEqual(removed.sort(), [good.ID, bad.ID].sort());
});

test('a broken events stream reconnects and exits that happened meanwhile are still seen', async (t) => {
  // a unix-socket proxy to dockerd whose connections the test can cut
  const { createServer, connect } = await import('node:net');
  const dir = mkdtempSync(join(tmpdir(), 'shoal-wk-sock-'));
  const sock = join(dir, 'docker.sock');
  const conns = new Set<import('node:net').Socket>();
  const server = createServer((c) => {
    const up = connect('/var/run/docker.sock');
    conns.add(c); conns.add(up);
    c.pipe(up); up.pipe(c);
    const drop = () => { c.destroy(); up.destroy(); conns.delete(c); conns.delete(up); };
    c.on('error', drop); up.on('error', drop); c.on('close', drop); up.on('close', drop);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  t.teardown(async () => {
    for (const c of conns) c.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const proxied = new Docker({ socketPath: sock });
  const { worker, nodeId, waitState } = setup(t, undefined, { docker: proxied });
  await worker.start();
  const tk = task(nodeId);
  worker.setAssignments([tk]);
  const running = await waitState(tk.ID, 'running');

  // cut every connection (the events stream among them), then kill the container directly
  for (const c of conns) c.destroy();
  await docker.getContainer(running.ContainerStatus!.ContainerID!).kill();
  const failed = await waitState(tk.ID, 'failed');
  t.is(failed.Err, 'task: non-zero exit (137)');
  t.is(failed.ContainerStatus?.ExitCode, 137);
});
