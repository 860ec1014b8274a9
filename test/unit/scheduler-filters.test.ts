import test from 'ava';
import {
  availabilityFilter, constraintFilter, FILTERS, hostPortFilter, maxReplicasFilter, nodeRejection, platformFilter,
  readyFilter, resourceFilter, taskRequest, unschedulableReason,
} from '../../agent/manager/scheduler/filters.js';
import { CPU, GiB, makeNode, makeService, makeTask, type TaskInput } from '../../agent/manager/scheduler/fixtures.js';
import { NodeInfo, occupancy } from '../../agent/manager/scheduler/nodeinfo.js';

const svc = makeService({ id: 'svc1' });
const req = (p: Partial<TaskInput> = {}, service = svc) => taskRequest(makeTask({ serviceId: service.ID, ...p }), service);

test('ready: only ready nodes pass', (t) => {
  t.is(readyFilter.check(req(), new NodeInfo(makeNode())), undefined);
  t.is(readyFilter.check(req(), new NodeInfo(makeNode({ state: 'down' }))), 'node is down');
  t.is(readyFilter.check(req(), new NodeInfo(makeNode({ state: 'unknown' }))), 'node is unknown');
  t.is(readyFilter.explain(1, req()), '1 node not available for new tasks');
  t.is(readyFilter.explain(2, req()), '2 nodes not available for new tasks');
});

test('availability: drain and pause are rejected', (t) => {
  t.is(availabilityFilter.check(req(), new NodeInfo(makeNode())), undefined);
  t.is(availabilityFilter.check(req(), new NodeInfo(makeNode({ availability: 'drain' }))), 'node availability is drain');
  t.is(availabilityFilter.check(req(), new NodeInfo(makeNode({ availability: 'pause' }))), 'node availability is pause');
});

test('resources: reservations of occupying tasks are subtracted', (t) => {
  const ni = new NodeInfo(makeNode({ cpus: 2, memGiB: 4 }));
  t.is(resourceFilter.check(req({ cpus: 2, memGiB: 4 }), ni), undefined);
  t.regex(resourceFilter.check(req({ cpus: 3 }), ni) ?? '', /^insufficient CPU/);
  t.regex(resourceFilter.check(req({ memGiB: 5 }), ni) ?? '', /^insufficient memory/);
  const running = makeTask({ serviceId: 'other', nodeId: ni.id, state: 'running', cpus: 1.5, memGiB: 1 });
  ni.addTask(running.ID, occupancy(running, undefined)!);
  t.is(ni.freeCpu, 0.5 * CPU);
  t.is(ni.freeMem, 3 * GiB);
  t.is(resourceFilter.check(req({ cpus: 0.5 }), ni), undefined);
  t.truthy(resourceFilter.check(req({ cpus: 0.6 }), ni));
  t.is(resourceFilter.check(req(), ni), undefined, 'no reservation always fits');
  ni.removeTask(running.ID);
  t.is(resourceFilter.check(req({ cpus: 2 }), ni), undefined, 'freed on removal');
  t.is(resourceFilter.explain(3, req()), 'insufficient resources on 3 nodes');
});

test('occupancy: terminal and pending tasks hold nothing; desired shutdown holds resources but is not counted', (t) => {
  const base = { serviceId: 's', nodeId: 'n', cpus: 1 };
  for (const state of ['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned', 'pending', 'new'] as const) {
    t.is(occupancy(makeTask({ ...base, state }), undefined), undefined, state);
  }
  t.is(occupancy(makeTask({ serviceId: 's', state: 'running' }), undefined), undefined, 'no node');
  for (const state of ['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running'] as const) {
    t.like(occupancy(makeTask({ ...base, state }), undefined), { nanoCpus: CPU, active: true }, state);
  }
  const stopping = occupancy(makeTask({ ...base, state: 'running', desired: 'shutdown' }), undefined)!;
  t.like(stopping, { nanoCpus: CPU, active: false });
  const ni = new NodeInfo(makeNode({ id: 'n' }));
  ni.addTask('x', stopping);
  t.is(ni.activeTasks, 0);
  t.is(ni.serviceTasks('s'), 0);
  t.is(ni.reservedCpu, CPU);
});

test('constraints: checked against the node; an invalid constraint rejects every node', (t) => {
  const ni = new NodeInfo(makeNode({ role: 'manager', labels: { zone: 'a' } }));
  t.is(constraintFilter.check(req({ constraints: ['node.role==manager', 'node.labels.zone==a'] }), ni), undefined);
  t.is(constraintFilter.check(req({ constraints: ['node.role==worker'] }), ni), 'scheduling constraints not satisfied');
  const bad = req({ constraints: ['node.role=manager'] });
  t.is(bad.constraintError, 'constraint expected one operator from ==, !=');
  t.is(constraintFilter.check(bad, ni), 'invalid constraint: constraint expected one operator from ==, !=');
  t.is(unschedulableReason(bad, [ni]), 'no suitable node (invalid constraint: constraint expected one operator from ==, !=)');
  t.is(constraintFilter.explain(2, req()), 'scheduling constraints not satisfied on 2 nodes');
});

test('platform: any listed platform matches; x86_64 is amd64', (t) => {
  const ni = new NodeInfo(makeNode({ os: 'linux', arch: 'x86_64' }));
  t.is(platformFilter.check(req(), ni), undefined);
  t.is(platformFilter.check(req({ platforms: [{ OS: 'linux', Architecture: 'amd64' }] }), ni), undefined);
  t.is(platformFilter.check(req({ platforms: [{ OS: 'linux' }] }), ni), undefined);
  t.is(platformFilter.check(req({ platforms: [{ Architecture: 'arm64' }, { Architecture: 'amd64' }] }), ni), undefined);
  t.is(platformFilter.check(req({ platforms: [{ OS: 'windows', Architecture: 'amd64' }] }), ni), 'unsupported platform linux/amd64');
  const arm = new NodeInfo(makeNode({ arch: 'aarch64' }));
  t.is(platformFilter.check(req({ platforms: [{ Architecture: 'arm64' }] }), arm), undefined);
  t.is(platformFilter.explain(1, req()), 'unsupported platform on 1 node');
});

test('host ports: a host-mode published port already used on the node rejects it', (t) => {
  const web = makeService({ id: 'web', ports: [{ TargetPort: 80, PublishedPort: 8080, PublishMode: 'host', Protocol: 'tcp' }] });
  const ingress = makeService({ id: 'ing', ports: [{ TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }] });
  const ni = new NodeInfo(makeNode());
  const r = req({}, web);
  t.deepEqual([...r.hostPorts], ['tcp/8080']);
  t.deepEqual([...req({}, ingress).hostPorts], [], 'ingress ports do not bind on the node');
  t.is(hostPortFilter.check(r, ni), undefined);
  const other = makeTask({ serviceId: web.ID, nodeId: ni.id, state: 'running' });
  ni.addTask(other.ID, occupancy(other, web)!);
  t.is(hostPortFilter.check(r, ni), 'host-mode port tcp/8080 already in use');
  const udp = makeService({ ports: [{ TargetPort: 80, PublishedPort: 8080, PublishMode: 'host', Protocol: 'udp' }] });
  t.is(hostPortFilter.check(req({}, udp), ni), undefined, 'other protocol is free');
  ni.removeTask(other.ID);
  t.is(hostPortFilter.check(r, ni), undefined);
  t.is(hostPortFilter.explain(2, r), 'host-mode port already in use on 2 nodes');
});

test('max replicas per node', (t) => {
  const ni = new NodeInfo(makeNode());
  const r = req({ maxReplicas: 2 });
  for (let i = 0; i < 2; i++) {
    t.is(maxReplicasFilter.check(r, ni), undefined);
    const x = makeTask({ serviceId: svc.ID, nodeId: ni.id, state: 'running' });
    ni.addTask(x.ID, occupancy(x, svc)!);
  }
  t.is(maxReplicasFilter.check(r, ni), 'max replicas per node limit (2) reached');
  t.is(maxReplicasFilter.check(req({ maxReplicas: 2 }, makeService({ id: 'other' })), ni), undefined, 'per service');
  t.is(maxReplicasFilter.check(req(), ni), undefined, '0 = unlimited');
  t.is(maxReplicasFilter.explain(1, r), 'max replicas per node limit exceed');
});

test('unschedulable reason: counts the first failing filter per node, most frequent first', (t) => {
  const r = req({ cpus: 4, constraints: ['node.labels.gpu==yes'] });
  const nodes = [
    new NodeInfo(makeNode({ cpus: 2, labels: { gpu: 'yes' } })),
    new NodeInfo(makeNode({ cpus: 2, labels: { gpu: 'yes' } })),
    new NodeInfo(makeNode({ cpus: 2 })), // fails resources first (Swarm's order)
    new NodeInfo(makeNode({ cpus: 8, labels: {} })),
    new NodeInfo(makeNode({ availability: 'drain' })),
  ];
  t.is(unschedulableReason(r, nodes), 'no suitable node (insufficient resources on 3 nodes; 1 node not available for new tasks; scheduling constraints not satisfied on 1 node)');
  t.is(unschedulableReason(r, []), 'no suitable node');
  const downAndDrained = [new NodeInfo(makeNode({ state: 'down' })), new NodeInfo(makeNode({ availability: 'drain' }))];
  t.is(unschedulableReason(req(), downAndDrained), 'no suitable node (2 nodes not available for new tasks)', 'ready and availability share one count');
});

test('nodeRejection explains a single node without the prefix (pre-assigned tasks)', (t) => {
  t.is(nodeRejection(req({ cpus: 100 }), new NodeInfo(makeNode())), 'insufficient resources on 1 node');
  t.is(nodeRejection(req(), new NodeInfo(makeNode())), undefined);
  t.is(FILTERS.length, 7);
});
