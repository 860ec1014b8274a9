// Unit tests of the control API on a MemoryStore: validation in Docker's
// words, filters, name/ID/prefix resolution, optimistic concurrency,
// rollback, defaults, ports, nodes and networks. Bad input changes nothing.
import test from 'ava';
import { ShoalError, httpStatus } from '../../agent/common/errors.js';
import type { Node, ServiceSpec, Task } from '../../agent/common/types.js';
import {
  createNetwork, createService, getNode, getService, listNodes, listServices, listTasks, parseFilters,
  removeNetwork, removeNode, removeService, resolve, updateNode, updateService, withDefaults,
} from '../../agent/manager/controlapi/index.js';
import { MemoryStore } from '../../agent/manager/store/memory.js';

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return { Name: name, Labels: {}, TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1', Args: ['sleep', '60'] } }, Mode: { Replicated: { Replicas: 1 } }, ...over };
}

function node(id: string, hostname: string, over: Partial<Node> = {}): Node {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Labels: {}, Role: 'worker', Availability: 'active' },
    Description: { Hostname: hostname, Platform: { Architecture: 'x86_64', OS: 'linux' }, Resources: { NanoCPUs: 1e9, MemoryBytes: 1e9 }, Engine: { EngineVersion: '20.10', Plugins: [] } },
    Status: { State: 'ready', Addr: '10.0.0.1' },
    ...over,
  };
}

function task(id: string, serviceId: string, over: Partial<Task> = {}): Task {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { ContainerSpec: { Image: 'x' } }, ServiceID: serviceId,
    Status: { Timestamp: '', State: 'running', Message: '' }, DesiredState: 'running', ...over,
  };
}

/** asserts fn rejects with a ShoalError of this HTTP status and message, and the store did not change */
async function rejects(t: import('ava').ExecutionContext, store: MemoryStore, fn: () => unknown, status: number, message: string | RegExp): Promise<void> {
  const before = store.revision;
  const err = await (async () => { try { await fn(); } catch (e) { return e; } return undefined; })();
  t.true(err instanceof ShoalError, `expected a ShoalError, got ${String(err)}`);
  t.is(httpStatus(err), status);
  if (typeof message === 'string') t.is((err as Error).message, message); else t.regex((err as Error).message, message);
  t.is(store.revision, before, 'store unchanged');
}

test('create stores Docker defaults and SpecVersion 1', async (t) => {
  const store = new MemoryStore();
  const s = await createService(store, { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } }, Mode: { Replicated: {} } });
  t.regex(s.ID, /^[a-z0-9]{25}$/);
  t.deepEqual(s.Spec.Mode, { Replicated: { Replicas: 1 } });
  t.is(s.Spec.TaskTemplate.ContainerSpec.Isolation, 'default');
  t.is(s.Spec.TaskTemplate.Runtime, 'container');
  t.deepEqual(s.Endpoint, { Spec: { Mode: 'vip' } });
  t.is(s.SpecVersion, 1);
  const noMode = await createService(store, { Name: 'nomode', TaskTemplate: { ContainerSpec: { Image: 'a' } } });
  t.deepEqual(noMode.Spec.Mode, { Replicated: { Replicas: 1 } });
});

test('create validates with Docker words and writes nothing', async (t) => {
  const store = new MemoryStore();
  const c = (body: unknown) => () => createService(store, body);
  await rejects(t, store, c({ ...spec('neg'), Mode: { Replicated: { Replicas: -1 } } }), 400, 'rpc error: code = InvalidArgument desc = Number of replicas must be non-negative');
  await rejects(t, store, c({ Name: 'x', TaskTemplate: { ContainerSpec: {} } }), 400, 'rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided');
  await rejects(t, store, c(spec('')), 400, 'rpc error: code = InvalidArgument desc = meta: name must be provided');
  await rejects(t, store, c(spec('bad name')), 400, 'rpc error: code = InvalidArgument desc = name must be valid as a DNS name component');
  await rejects(t, store, c(spec('a'.repeat(64))), 400, 'rpc error: code = InvalidArgument desc = name must be 63 characters or fewer');
  await rejects(t, store, c(spec('m', { Mode: { Replicated: { Replicas: 1 }, Global: {} } })), 400, 'must specify only one service mode');
  await rejects(t, store, c({ ...spec('img'), TaskTemplate: { ContainerSpec: { Image: 'UPPER/Case' } } }), 400, 'rpc error: code = InvalidArgument desc = ContainerSpec: "UPPER/Case" is not a valid repository/tag');
  await rejects(t, store, c(spec('p', { EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }, { TargetPort: 81, PublishedPort: 8080 }] } })), 400,
    'rpc error: code = InvalidArgument desc = EndpointSpec: duplicate published ports provided');
  await rejects(t, store, c(spec('p2', { EndpointSpec: { Mode: 'dnsrr', Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } })), 400, /ingress mode can't be used with dnsrr mode/);
  await rejects(t, store, c({ ...spec('mnt'), TaskTemplate: { ContainerSpec: { Image: 'a', Mounts: [{ Type: 'volume', Target: '/d' }, { Type: 'bind', Source: '/x', Target: '/d' }] } } }), 400,
    'rpc error: code = InvalidArgument desc = ContainerSpec: duplicate mount point: /d');
  await rejects(t, store, c({ ...spec('mnt2'), TaskTemplate: { ContainerSpec: { Image: 'a', Mounts: [{ Type: 'bind', Source: 'rel', Target: '/d' }] } } }), 400, /mount path must be absolute/);
  await rejects(t, store, c({ ...spec('rp'), TaskTemplate: { ContainerSpec: { Image: 'a' }, RestartPolicy: { Condition: 'sometimes' } } }), 400, 'invalid RestartCondition: "sometimes"');
  await rejects(t, store, c({ ...spec('rp2'), TaskTemplate: { ContainerSpec: { Image: 'a' }, RestartPolicy: { Delay: -1 } } }), 400, 'rpc error: code = InvalidArgument desc = TaskSpec: restart-delay cannot be negative');
  await rejects(t, store, c(spec('uc', { UpdateConfig: { MaxFailureRatio: 2 } })), 400, /update-maxfailureratio cannot be less than 0 or bigger than 1/);
  await rejects(t, store, c(spec('uc2', { UpdateConfig: { FailureAction: 'explode' as never } })), 400, 'unrecognized update failure action explode');
  await rejects(t, store, c({ ...spec('pl'), TaskTemplate: { ContainerSpec: { Image: 'a' }, Placement: { Constraints: ['node.role'] } } }), 400, /constraint expected one operator from ==, !=/);
  await rejects(t, store, c({ ...spec('net'), TaskTemplate: { ContainerSpec: { Image: 'a' }, Networks: [{ Target: 'nonet' }] } }), 404, 'network nonet not found');
  await rejects(t, store, c('a string'), 400, /^invalid JSON: /);
  await rejects(t, store, c({ Name: 5 }), 400, 'invalid JSON: Name must be a string');
  await rejects(t, store, c({ ...spec('x'), Mode: { Replicated: { Replicas: 1.5 } } }), 400, /Replicas must be an integer/);
  await rejects(t, store, c({ ...spec('x'), EndpointSpec: { Ports: [{ TargetPort: 70000 }] } }), 400, /out of range/);
  t.is(store.list('services').length, 0);
});

test('duplicate names conflict (case-insensitive) with Docker words', async (t) => {
  const store = new MemoryStore();
  await createService(store, spec('web'));
  await rejects(t, store, () => createService(store, spec('WEB')), 409,
    'rpc error: code = AlreadyExists desc = name conflicts with an existing object: service WEB already exists');
});

test('published ports: defaults, dynamic range, conflicts across services, kept on update', async (t) => {
  const store = new MemoryStore();
  const a = await createService(store, spec('a', { EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }, { TargetPort: 53, Protocol: 'udp' }, { TargetPort: 9000, PublishMode: 'host' }] } }));
  t.deepEqual(a.Endpoint.Ports, [
    { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
    { Protocol: 'udp', TargetPort: 53, PublishedPort: 30000, PublishMode: 'ingress' },
    { Protocol: 'tcp', TargetPort: 9000, PublishMode: 'host' },
  ]);
  const b = await createService(store, spec('b', { EndpointSpec: { Ports: [{ TargetPort: 53, Protocol: 'udp' }, { TargetPort: 80, PublishedPort: 8080, Protocol: 'udp' }] } }));
  t.is(b.Endpoint.Ports![0]!.PublishedPort, 30001);
  await rejects(t, store, () => createService(store, spec('c', { EndpointSpec: { Ports: [{ TargetPort: 1, PublishedPort: 8080 }] } })), 400,
    `rpc error: code = InvalidArgument desc = port '8080' is already in use by service 'a' (${a.ID}) as an ingress port`);
  const cur = getService(store, 'a');
  const up = await updateService(store, 'a', { ...cur.Spec, Labels: { x: 'y' } }, { version: cur.Version.Index });
  t.deepEqual(up.Endpoint.Ports, a.Endpoint.Ports);
});

test('resolution: ID, then name, then unique prefix; ambiguous is a 400', async (t) => {
  const store = new MemoryStore();
  await store.update((tx) => {
    tx.create('nodes', node('abc111', 'host-a'));
    tx.create('nodes', node('abc222', 'host-b'));
    tx.create('nodes', node('xyz333', 'abc111x'));
  });
  t.is(resolve(store, 'nodes', 'abc111').ID, 'abc111');
  t.is(resolve(store, 'nodes', 'host-b').ID, 'abc222');
  t.is(resolve(store, 'nodes', 'HOST-B').ID, 'abc222');
  t.is(resolve(store, 'nodes', 'xyz').ID, 'xyz333');
  t.is(getNode(store, 'abc2').ID, 'abc222');
  const amb = t.throws(() => resolve(store, 'nodes', 'abc'));
  t.is(amb?.message, 'node abc is ambiguous (2 matches found)');
  t.is(httpStatus(amb), 400);
  const nf = t.throws(() => resolve(store, 'services', 'nope'));
  t.is(nf?.message, 'service nope not found');
  t.is(httpStatus(nf), 404);
});

test('filters: services by name prefix, id, label, mode; bad keys refused', async (t) => {
  const store = new MemoryStore();
  const web = await createService(store, spec('web', { Labels: { tier: 'front' } }));
  await createService(store, spec('web2'));
  await createService(store, spec('g', { Mode: { Global: {} } }));
  const names = (f: unknown) => listServices(store, parseFilters(JSON.stringify(f))).map((s) => s.Spec.Name).sort();
  t.deepEqual(names({ name: { web: true } }), ['web', 'web2']);
  t.deepEqual(names({ id: { [web.ID.slice(0, 5)]: true } }), ['web']);
  t.deepEqual(names({ label: { tier: true } }), ['web']);
  t.deepEqual(names({ label: { 'tier=back': true } }), []);
  t.deepEqual(names({ mode: { global: true } }), ['g']);
  t.deepEqual(names({ name: ['web2'] }), ['web2']);
  t.throws(() => parseFilters('{bad'), { message: 'invalid filter' });
  t.throws(() => listServices(store, parseFilters('{"nope":{"x":true}}')), { message: "invalid filter 'nope'" });
});

test('filters: nodes by role/membership/name/label, tasks by service, node, desired-state and _up-to-date', async (t) => {
  const store = new MemoryStore();
  await store.update((tx) => {
    tx.create('nodes', node('m1', 'mgr', { Spec: { Labels: { zone: 'a' }, Role: 'manager', Availability: 'active' } }));
    tx.create('nodes', node('w1', 'wrk'));
  });
  const nodeIds = (f: unknown) => listNodes(store, parseFilters(JSON.stringify(f))).map((n) => n.ID).sort();
  t.deepEqual(nodeIds({ role: { manager: true } }), ['m1']);
  t.deepEqual(nodeIds({ membership: { accepted: true } }), ['m1', 'w1']);
  t.deepEqual(nodeIds({ name: { wr: true } }), ['w1']);
  t.deepEqual(nodeIds({ 'node.label': { 'zone=a': true } }), ['m1']);
  t.throws(() => nodeIds({ role: { boss: true } }), { message: "Invalid role filter: 'boss'" });

  const s = await createService(store, spec('web'));
  await store.update((tx) => {
    tx.create('tasks', task('t1', s.ID, { NodeID: 'm1', Slot: 1, SpecVersion: 1 }));
    tx.create('tasks', task('t2', s.ID, { NodeID: 'w1', Slot: 1, SpecVersion: 0, DesiredState: 'shutdown' }));
  });
  const taskIds = (f: unknown) => listTasks(store, parseFilters(JSON.stringify(f))).map((x) => x.ID).sort();
  t.deepEqual(taskIds({ service: { web: true } }), ['t1', 't2']);
  t.deepEqual(taskIds({ node: { wrk: true } }), ['t2']);
  t.deepEqual(taskIds({ 'desired-state': { running: true } }), ['t1']);
  t.deepEqual(taskIds({ '_up-to-date': { true: true }, service: { [s.ID]: true } }), ['t1']);
  t.deepEqual(taskIds({ name: { 'web.1': true } }), ['t1', 't2']);
  t.throws(() => taskIds({ service: { nope: true } }), { message: 'service nope not found' });
  t.throws(() => taskIds({ 'desired-state': { flying: true } }), { message: "Invalid desired-state filter: 'flying'" });
  const listed = listServices(store, new Map(), { status: true });
  t.deepEqual(listed[0]!.ServiceStatus, { RunningTasks: 2, DesiredTasks: 1, CompletedTasks: 0 });
});

test('update: version check, SpecVersion only for task changes, rollback swaps specs', async (t) => {
  const store = new MemoryStore();
  const s = await createService(store, spec('web'));
  await rejects(t, store, () => updateService(store, 'web', { ...s.Spec, Labels: { a: 'b' } }, { version: s.Version.Index + 5 }), 400,
    'rpc error: code = Unknown desc = update out of sequence');
  await rejects(t, store, () => updateService(store, 'web', s.Spec, { version: s.Version.Index, rollback: true }), 400,
    `rpc error: code = FailedPrecondition desc = service ${s.ID} does not have a previous spec`);
  await rejects(t, store, () => updateService(store, 'web', { ...s.Spec, Name: 'other' }, { version: s.Version.Index }), 400, /renaming services is not supported/);
  await rejects(t, store, () => updateService(store, 'web', { ...s.Spec, Mode: { Global: {} } }, { version: s.Version.Index }), 400, /service mode change is not allowed/);

  const scaled = await updateService(store, 'web', { ...s.Spec, Mode: { Replicated: { Replicas: 3 } } }, { version: s.Version.Index });
  t.is(scaled.SpecVersion, 1);
  t.is(scaled.UpdateStatus, undefined);
  t.is(scaled.PreviousSpec!.Mode.Replicated!.Replicas, 1);

  const img = structuredClone(scaled.Spec);
  img.TaskTemplate.ContainerSpec.Image = 'local/busybox:2';
  const updated = await updateService(store, scaled.ID, img, { version: scaled.Version.Index });
  t.is(updated.SpecVersion, 2);
  t.is(updated.UpdateStatus!.State, 'updating');
  t.is(updated.UpdateStatus!.Message, 'update in progress');
  t.is(updated.PreviousSpec!.TaskTemplate.ContainerSpec.Image, 'local/busybox:1');

  const forced = structuredClone(updated.Spec);
  forced.TaskTemplate.ForceUpdate = 1;
  const f = await updateService(store, updated.ID, forced, { version: updated.Version.Index });
  t.is(f.SpecVersion, 3, 'ForceUpdate makes tasks out of date');

  const rb = await updateService(store, f.ID, f.Spec, { version: f.Version.Index, rollback: true });
  t.deepEqual(rb.Spec, updated.Spec);
  t.deepEqual(rb.PreviousSpec, f.Spec);
  t.is(rb.SpecVersion, 4);
  t.is(rb.UpdateStatus!.State, 'rollback_started');
  t.is(rb.UpdateStatus!.Message, 'manually requested rollback');
});

test('insertDefaults fills what dockerd fills, without touching the store', async (t) => {
  const store = new MemoryStore();
  await createService(store, spec('web'));
  const d = getService(store, 'web', { insertDefaults: true }).Spec;
  t.deepEqual(d.UpdateConfig, { Parallelism: 1, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first' });
  t.deepEqual(d.RollbackConfig, { Parallelism: 1, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first' });
  t.deepEqual(d.TaskTemplate.RestartPolicy, { Condition: 'any', Delay: 5e9, MaxAttempts: 0 });
  t.is(d.TaskTemplate.ContainerSpec.StopGracePeriod, 10e9);
  t.deepEqual(d.TaskTemplate.Placement, {});
  t.deepEqual(d.EndpointSpec, { Mode: 'vip' });
  t.is(getService(store, 'web').Spec.UpdateConfig, undefined);
  const partial = withDefaults({ ...spec('x'), UpdateConfig: { Parallelism: 0, Order: 'start-first' } });
  t.deepEqual(partial.UpdateConfig, { Parallelism: 0, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'start-first' });
});

test('remove service by name; unknown is 404', async (t) => {
  const store = new MemoryStore();
  await createService(store, spec('web'));
  await rejects(t, store, () => removeService(store, 'nope'), 404, 'service nope not found');
  await removeService(store, 'web');
  t.is(store.list('services').length, 0);
});

test('nodes: update checks Role/Availability and version; remove refuses managers and live nodes', async (t) => {
  const store = new MemoryStore();
  await store.update((tx) => {
    tx.create('nodes', node('m1', 'mgr', { Spec: { Labels: {}, Role: 'manager', Availability: 'active' } }));
    tx.create('nodes', node('w1', 'wrk'));
  });
  const m1 = store.get('nodes', 'm1')!;
  await rejects(t, store, () => updateNode(store, 'mgr', { Role: 'boss', Availability: 'active' }, m1.Version.Index), 400, 'invalid Role: "boss"');
  await rejects(t, store, () => updateNode(store, 'mgr', { Role: 'manager', Availability: 'sleep' }, m1.Version.Index), 400, 'invalid Availability: "sleep"');
  await rejects(t, store, () => updateNode(store, 'mgr', { Role: 'manager', Availability: 'drain' }, m1.Version.Index - 1), 400, 'rpc error: code = Unknown desc = update out of sequence');
  await rejects(t, store, () => updateNode(store, 'mgr', { Role: 'worker', Availability: 'active' }, m1.Version.Index), 400, /attempting to demote the last manager of the swarm/);
  const drained = await updateNode(store, 'mgr', { Labels: { z: '1' }, Role: 'manager', Availability: 'drain' }, m1.Version.Index);
  t.deepEqual(drained.Spec, { Labels: { z: '1' }, Role: 'manager', Availability: 'drain' });

  await rejects(t, store, () => removeNode(store, 'mgr', { force: true }), 400,
    'rpc error: code = FailedPrecondition desc = node m1 is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal');
  await rejects(t, store, () => removeNode(store, 'wrk'), 400, "rpc error: code = FailedPrecondition desc = node w1 is not down and can't be removed");
  await removeNode(store, 'wrk', { force: true });
  t.deepEqual(store.list('nodes').map((n) => n.ID), ['m1']);
});

test('networks: create overlay, IPAM checks, conflicts, in-use refusal', async (t) => {
  const store = new MemoryStore();
  const n = await createNetwork(store, { Name: 'appnet', Driver: 'overlay', IPAM: { Driver: 'default', Options: {}, Config: [] }, Options: {}, Labels: {}, CheckDuplicate: true });
  t.deepEqual(n.Spec, { Name: 'appnet', Labels: {}, DriverConfiguration: { Name: 'overlay' }, IPAMOptions: { Driver: { Name: 'default' } }, Scope: 'swarm' });
  t.is(n.IPAMOptions, undefined);
  const sub = await createNetwork(store, { Name: 'subnet', Driver: 'overlay', IPAM: { Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] } });
  t.deepEqual(sub.IPAMOptions, { Driver: { Name: 'default' }, Configs: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] });
  await rejects(t, store, () => createNetwork(store, { Name: 'appnet', Driver: 'overlay' }), 409, 'network with name appnet already exists');
  await rejects(t, store, () => createNetwork(store, { Name: 'bad', Driver: 'overlay', IPAM: { Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.8.0.1' }] } }), 400,
    'rpc error: code = InvalidArgument desc = ipam configuration: subnet 10.9.0.0/24 does not contain gateway 10.8.0.1');
  await rejects(t, store, () => createNetwork(store, { Name: 'bad', Driver: 'overlay', IPAM: { Config: [{ Subnet: 'nonsense' }] } }), 400, /invalid subnet nonsense/);
  await rejects(t, store, () => createNetwork(store, { Name: 'host', Driver: 'overlay' }), 403, 'host is a pre-defined network and cannot be created');
  await rejects(t, store, () => createNetwork(store, { Name: 'i', Driver: 'overlay', Ingress: true, Attachable: true }), 400, /ingress network cannot be attachable/);

  const s = await createService(store, { ...spec('web'), TaskTemplate: { ContainerSpec: { Image: 'a' }, Networks: [{ Target: 'appnet' }] } });
  t.is(s.Spec.TaskTemplate.Networks![0]!.Target, n.ID);
  await rejects(t, store, () => removeNetwork(store, 'appnet'), 400, `rpc error: code = FailedPrecondition desc = network ${n.ID} is in use by service ${s.ID}`);
  await removeService(store, 'web');
  await removeNetwork(store, 'appnet');
  t.deepEqual(store.list('networks').map((x) => x.Spec.Name), ['subnet']);
});
