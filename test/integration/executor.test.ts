// Integration tests for DockerExecutor against the real dockerd: image checks,
// idempotent container steps, labels as Swarm's, and the node-filtered events stream.
import test from 'ava';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { DockerExecutor, type ContainerEvent } from '../../agent/worker/executor/docker.js';
import { containerCreateOptions } from '../../agent/worker/executor/container.js';
import { newId } from '../../agent/common/ids.js';
import type { ContainerSpec, Task } from '../../agent/common/types.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const RUN = `exec-${randomBytes(4).toString('hex')}`;

function task(nodeId: string, spec: Partial<ContainerSpec> = {}): Task {
  return {
    ID: newId(), Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', ServiceID: newId(), Slot: 1, NodeID: nodeId,
    Spec: { ContainerSpec: { Image: 'local/busybox:1', Command: ['sleep', '3600'], StopGracePeriod: 1e9, Labels: { 'shoal.test': RUN }, ...spec } },
    Status: { Timestamp: '', State: 'assigned', Message: '' }, DesiredState: 'running',
  };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.after.always(async () => {
  const cs = await docker.listContainers({ all: true, filters: { label: [`shoal.test=${RUN}`] } });
  await Promise.allSettled(cs.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
});

test('local image is present; a missing image fails after the pull attempt with Docker\'s words', async (t) => {
  const ex = new DockerExecutor(docker, { nodeId: `n-${RUN}` });
  await t.notThrowsAsync(ex.ensureImage('local/busybox:1'));
  const err = await t.throwsAsync(ex.ensureImage(`local/absent-${RUN}:1`));
  t.is(err?.message, `No such image: local/absent-${RUN}:1`);
});

test('create/start/stop/remove are idempotent and labels are Swarm\'s', async (t) => {
  const nodeId = `n-${RUN}-a`;
  const ex = new DockerExecutor(docker, { nodeId });
  const tk = task(nodeId);
  const opts = containerCreateOptions(tk, { serviceName: 'websvc', nodeId });
  const id = await ex.create(opts);
  t.is(await ex.create(opts), id, 'second create of the same task returns the same container');

  const obs = await ex.start(id);
  t.true(obs.running);
  t.true(obs.pid > 0);
  t.is(obs.taskId, tk.ID);
  t.is(obs.name, `websvc.1.${tk.ID}`);
  await t.notThrowsAsync(ex.start(id), 'already started is success');

  const info = await docker.getContainer(id).inspect();
  t.is(info.HostConfig.NetworkMode, 'none');
  t.like(info.Config.Labels, {
    'com.docker.swarm.task': '',
    'com.docker.swarm.task.id': tk.ID,
    'com.docker.swarm.task.name': `websvc.1.${tk.ID}`,
    'com.docker.swarm.node.id': nodeId,
    'com.docker.swarm.service.id': tk.ServiceID,
    'com.docker.swarm.service.name': 'websvc',
  });

  const listed = await ex.list();
  t.deepEqual(listed.map((c) => c.id), [id]);

  await ex.stop(id, 1);
  const after = await ex.inspect(id);
  t.false(after?.running);
  await t.notThrowsAsync(ex.stop(id, 1), 'already stopped is success');
  await ex.remove(id);
  t.is(await ex.inspect(id), undefined);
  await t.notThrowsAsync(ex.remove(id), 'no such container is success');
});

test('events stream reports exits of this node\'s containers only, with exit codes', async (t) => {
  const nodeId = `n-${RUN}-ev`;
  const other = `n-${RUN}-other`;
  const ex = new DockerExecutor(docker, { nodeId });
  const events: ContainerEvent[] = [];
  let connected = 0;
  const w = ex.watch({ onEvent: (e) => events.push(e), onConnect: () => { connected++; } });
  t.teardown(() => w.close());
  await until('events connection', () => connected > 0 || undefined);

  const mine = task(nodeId, { Command: ['sh', '-c', 'exit 3'] });
  const theirs = task(other, { Command: ['sh', '-c', 'exit 4'] });
  const idTheirs = await ex.create(containerCreateOptions(theirs, { serviceName: 's', nodeId: other }));
  await docker.getContainer(idTheirs).start();
  const id = await ex.create(containerCreateOptions(mine, { serviceName: 's', nodeId }));
  await ex.start(id);

  const die = await until('die event', () => events.find((e) => e.id === id && e.action === 'die'));
  t.is(die.exitCode, 3);
  t.is(die.taskId, mine.ID);
  // the other node's container exited too (wait for it), but never shows up here
  await until('other container exit', async () => (await docker.getContainer(idTheirs).inspect()).State.Status === 'exited' || undefined);
  t.false(events.some((e) => e.id === idTheirs));
});
