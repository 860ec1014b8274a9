// Unit tests for the pure task → ContainerCreateOptions translation.
import test from 'ava';
import { containerCreateOptions, containerLabels, containerName, extraHosts, namedVolumes, stopGraceSeconds } from '../../agent/worker/executor/container.js';
import type { ContainerSpec, Task } from '../../agent/common/types.js';

function task(spec: Partial<ContainerSpec> = {}, extra: Partial<Task> = {}): Task {
  return {
    ID: 'taskid0000000000000000001', Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '',
    ServiceID: 'svcid00000000000000000001', Slot: 2, NodeID: 'node1',
    Spec: { ContainerSpec: { Image: 'local/busybox:1', ...spec } },
    Status: { Timestamp: '', State: 'assigned', Message: '' }, DesiredState: 'running',
    ...extra,
  };
}
const ctx = { serviceName: 'web', nodeId: 'node1' };

test('container name follows Swarm: service.slot.task, or service.node.task for global tasks', (t) => {
  t.is(containerName(task(), 'web'), 'web.2.taskid0000000000000000001');
  t.is(containerName(task({}, { Slot: 0 }), 'web'), 'web.node1.taskid0000000000000000001');
  t.is(containerName(task({}, { Name: 'x.9.taskid0000000000000000001' }), 'web'), 'x.9.taskid0000000000000000001');
  // a Name without the task id is not unique enough for a container
  t.is(containerName(task({}, { Name: 'web.2' }), 'web'), 'web.2.taskid0000000000000000001');
});

test('labels: system labels as Swarm sets them override spec and task labels', (t) => {
  const l = containerLabels(task({ Labels: { a: '1', 'com.docker.swarm.task.id': 'spoof' } }, { Labels: { b: '2' } }),
    { ...ctx, serviceLabels: { 'com.docker.stack.namespace': 'stk', other: 'x' } });
  t.deepEqual(l, {
    a: '1', b: '2',
    'com.docker.stack.namespace': 'stk',
    'com.docker.swarm.task': '',
    'com.docker.swarm.task.id': 'taskid0000000000000000001',
    'com.docker.swarm.task.name': 'web.2.taskid0000000000000000001',
    'com.docker.swarm.node.id': 'node1',
    'com.docker.swarm.service.id': 'svcid00000000000000000001',
    'com.docker.swarm.service.name': 'web',
  });
});

test('Command replaces the entrypoint and Args become Cmd; Args alone are Cmd', (t) => {
  let o = containerCreateOptions(task({ Command: ['sleep'], Args: ['10'] }), ctx);
  t.deepEqual(o.Entrypoint, ['sleep']);
  t.deepEqual(o.Cmd, ['10']);
  o = containerCreateOptions(task({ Command: ['sleep', '10'] }), ctx);
  t.deepEqual(o.Entrypoint, ['sleep', '10']);
  t.deepEqual(o.Cmd, []);
  o = containerCreateOptions(task({ Args: ['httpd', '-f'] }), ctx);
  t.is(o.Entrypoint, undefined);
  t.deepEqual(o.Cmd, ['httpd', '-f']);
});

test('spec fields map to container config and host config', (t) => {
  const o = containerCreateOptions(task({
    Env: ['A=1'], Dir: '/w', User: 'nobody', Hostname: 'h', TTY: true, OpenStdin: true, ReadOnly: true,
    StopSignal: 'SIGINT', StopGracePeriod: 3.5e9, Init: true, Groups: ['audio'],
    Hosts: ['10.0.0.1 db db.local', 'bad'], DNSConfig: { Nameservers: ['10.0.0.2'], Search: ['x'], Options: ['ndots:2'] },
    Sysctls: { 'net.core.somaxconn': '1024' }, CapabilityAdd: ['NET_ADMIN'], CapabilityDrop: ['MKNOD'],
    Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }],
    HealthCheck: { Test: ['CMD', 'true'], Interval: 1e9, Retries: 2 },
  }, { Spec: { ContainerSpec: { Image: 'x' }, Resources: { Limits: { NanoCPUs: 5e8, MemoryBytes: 64 << 20, Pids: 50 }, Reservations: { MemoryBytes: 32 << 20 } }, LogDriver: { Name: 'json-file', Options: { 'max-size': '1m' } } } }), ctx);
  t.is(o.Image, 'x');
  t.is(o.name, 'web.2.taskid0000000000000000001');
  t.is(o.HostConfig?.NetworkMode, 'none');
  t.is(o.HostConfig?.NanoCpus, 5e8);
  t.is(o.HostConfig?.Memory, 64 << 20);
  t.is(o.HostConfig?.PidsLimit, 50);
  t.is(o.HostConfig?.MemoryReservation, 32 << 20);
  t.deepEqual(o.HostConfig?.LogConfig, { Type: 'json-file', Config: { 'max-size': '1m' } });

  const p = containerCreateOptions(task({
    Env: ['A=1'], Dir: '/w', User: 'nobody', Hostname: 'h', TTY: true, OpenStdin: true, ReadOnly: true,
    StopSignal: 'SIGINT', StopGracePeriod: 3.5e9, Init: true, Groups: ['audio'],
    Hosts: ['10.0.0.1 db db.local', 'bad'], DNSConfig: { Nameservers: ['10.0.0.2'], Search: ['x'], Options: ['ndots:2'] },
    Sysctls: { 'net.core.somaxconn': '1024' }, CapabilityAdd: ['NET_ADMIN'], CapabilityDrop: ['MKNOD'],
    Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }],
    HealthCheck: { Test: ['CMD', 'true'], Interval: 1e9, Retries: 2 },
  }), { ...ctx, networkMode: 'host' });
  t.deepEqual(p.Env, ['A=1']);
  t.is(p.WorkingDir, '/w');
  t.is(p.User, 'nobody');
  t.is(p.Hostname, 'h');
  t.true(p.Tty);
  t.true(p.OpenStdin);
  t.is(p.StopSignal, 'SIGINT');
  t.is(p.StopTimeout, 3);
  t.deepEqual(p.Healthcheck, { Test: ['CMD', 'true'], Interval: 1e9, Retries: 2 });
  const hc = p.HostConfig!;
  t.is(hc.NetworkMode, 'host');
  t.true(hc.ReadonlyRootfs);
  t.true(hc.Init);
  t.deepEqual(hc.GroupAdd, ['audio']);
  t.deepEqual(hc.ExtraHosts, ['db:10.0.0.1', 'db.local:10.0.0.1']);
  t.deepEqual(hc.Dns, ['10.0.0.2']);
  t.deepEqual(hc.DnsSearch, ['x']);
  t.deepEqual(hc.DnsOptions, ['ndots:2']);
  t.deepEqual(hc.Sysctls, { 'net.core.somaxconn': '1024' });
  t.deepEqual(hc.CapAdd, ['NET_ADMIN']);
  t.deepEqual(hc.CapDrop, ['MKNOD']);
  t.deepEqual(hc.Ulimits, [{ Name: 'nofile', Soft: 100, Hard: 200 }]);
});

test('mounts: volume with options, bind, tmpfs with size and mode; named volumes listed', (t) => {
  const tk = task({
    Mounts: [
      { Type: 'volume', Source: 'data', Target: '/v', VolumeOptions: { Labels: { x: 'y' }, DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs' } } } },
      { Type: 'bind', Source: '/srv', Target: '/b', ReadOnly: true, BindOptions: { Propagation: 'rprivate' } },
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1 << 20, Mode: 0o1777 } },
      { Type: 'volume', Target: '/anon' },
    ],
  });
  const o = containerCreateOptions(tk, ctx);
  t.deepEqual(o.HostConfig?.Mounts, [
    { Type: 'volume', Source: 'data', Target: '/v', VolumeOptions: { NoCopy: false, Labels: { x: 'y' }, DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs' } } } },
    { Type: 'bind', Source: '/srv', Target: '/b', ReadOnly: true, BindOptions: { Propagation: 'rprivate' } },
    { Type: 'tmpfs', Source: '', Target: '/t', TmpfsOptions: { SizeBytes: 1 << 20, Mode: 0o1777 } },
    { Type: 'volume', Source: '', Target: '/anon' },
  ] as never);
  t.deepEqual(namedVolumes(tk), [{ Name: 'data', Driver: 'local', DriverOpts: { type: 'tmpfs', device: 'tmpfs' }, Labels: { x: 'y' } }]);
});

test('stop grace defaults to 10 s; hosts lines without names are skipped', (t) => {
  t.is(stopGraceSeconds(task()), 10);
  t.is(stopGraceSeconds(task({ StopGracePeriod: 1e9 })), 1);
  t.deepEqual(extraHosts(['1.2.3.4']), []);
  t.is(extraHosts(undefined), undefined);
});
