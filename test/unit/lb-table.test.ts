// Unit tests for lb/table.ts: services + tasks → the mesh's desired table
// (ingress and host-mode ports, labels, which tasks are backends).
import test from 'ava';
import type { Service, Task } from '../../agent/common/types.js';
import { meshTable, validateMeshLabels } from '../../lb/table.js';

const meta = (id: string) => ({ ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '' });
const net = (id: string) => ({ ...meta(id), Spec: { Name: id } });

function service(id: string, ports: Service['Endpoint']['Ports'], labels?: Record<string, string>): Service {
  return {
    ...meta(id),
    Spec: { Name: `web-${id}`, Labels: labels, TaskTemplate: { ContainerSpec: { Image: 'x' } }, Mode: { Replicated: { Replicas: 1 } } },
    Endpoint: { Spec: {}, Ports: ports },
  } as Service;
}

function task(id: string, svc: string, node: string, addr: string, state = 'running', desired = 'running', netId = 'ing'): Task {
  return {
    ...meta(id),
    ServiceID: svc,
    NodeID: node,
    Spec: { ContainerSpec: { Image: 'x' } },
    Status: { Timestamp: '', State: state, Message: '' },
    DesiredState: desired,
    NetworksAttachments: [{ Network: net(netId), Addresses: [`${addr}/24`] }],
  } as Task;
}

test('ingress ports with running tasks as backends; stopping and starting tasks excluded', (t) => {
  const s = service('s1', [
    { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
    { Protocol: 'udp', TargetPort: 53, PublishedPort: 5353 },
    { Protocol: 'tcp', TargetPort: 9000 }, // not published
  ]);
  const tasks = [
    task('t1', 's1', 'n1', '10.0.0.5'),
    task('t2', 's1', 'n2', '10.0.0.6'),
    task('t3', 's1', 'n2', '10.0.0.7', 'running', 'shutdown'), // draining
    task('t4', 's1', 'n2', '10.0.0.8', 'starting'),
    task('t5', 'other', 'n2', '10.0.0.9'),
  ];
  t.deepEqual(meshTable([s], tasks, { ingressNetworkId: 'ing' }), [
    {
      serviceId: 's1',
      name: 'web-s1',
      ports: [
        { protocol: 'tcp', publishedPort: 8080, targetPort: 80, mode: 'tcp' },
        { protocol: 'udp', publishedPort: 5353, targetPort: 53, mode: 'tcp' },
      ],
      backends: [
        { addr: '10.0.0.5', healthy: true },
        { addr: '10.0.0.6', healthy: true },
      ],
    },
  ]);
});

test('labels choose HTTP mode or PROXY protocol (both label spellings)', (t) => {
  const p = [{ Protocol: 'tcp' as const, TargetPort: 80, PublishedPort: 8080 }];
  const [h] = meshTable([service('h', p, { 'shoal.mesh.mode': 'http' })], [], { ingressNetworkId: 'ing' });
  t.like(h.ports[0], { mode: 'http' });
  t.is(h.ports[0].proxyProtocol, undefined);
  const [v] = meshTable([service('v', p, { 'shoal.lb.proxy-protocol': 'v2' })], [], { ingressNetworkId: 'ing' });
  t.like(v.ports[0], { mode: 'tcp', proxyProtocol: 'v2' });
  t.is(validateMeshLabels({ 'shoal.mesh.mode': 'http' }), undefined);
  t.regex(validateMeshLabels({ 'shoal.lb.mode': 'udp' }) ?? '', /tcp or http/);
  t.regex(validateMeshLabels({ 'shoal.mesh.proxy-protocol': 'v3' }) ?? '', /v1 or v2/);
  t.regex(validateMeshLabels({ 'shoal.mesh.mode': 'http', 'shoal.mesh.proxy-protocol': 'v1' }) ?? '', /TCP mode only/);
});

test('host-mode ports only on a node running a task, to its local tasks', (t) => {
  const s = service('s2', [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8090, PublishMode: 'host' }]);
  const tasks = [task('a', 's2', 'n1', '10.1.0.5', 'running', 'running', 'appnet'), task('b', 's2', 'n2', '10.0.0.6')];
  t.deepEqual(meshTable([s], tasks, { ingressNetworkId: 'ing' }), []);
  t.deepEqual(meshTable([s], tasks, { ingressNetworkId: 'ing', nodeId: 'n3' }), []);
  const [row] = meshTable([s], tasks, { ingressNetworkId: 'ing', nodeId: 'n1' });
  t.deepEqual(row.ports, [{ protocol: 'tcp', publishedPort: 8090, targetPort: 80, mode: 'tcp' }]);
  t.deepEqual(row.backends, [{ addr: '10.1.0.5', healthy: true }]);
});
