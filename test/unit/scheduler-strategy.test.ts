import test from 'ava';
import { taskRequest } from '../../agent/manager/scheduler/filters.js';
import { makeNode, makeService, makeTask, type NodeInput, type TaskInput } from '../../agent/manager/scheduler/fixtures.js';
import { NodeInfo, occupancy } from '../../agent/manager/scheduler/nodeinfo.js';
import { placeGroup, placeOnNode, StaticCache } from '../../agent/manager/scheduler/placer.js';
import { isStrategy } from '../../agent/manager/scheduler/strategy.js';

const svc = makeService({ id: 'svc1' });
const nodes = (inputs: NodeInput[]) => inputs.map((p, i) => new NodeInfo(makeNode({ id: `n${i}`, hostname: `h${i}`, ...p })));
const ids = (n: number, prefix = 't') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const req = (p: Partial<TaskInput> = {}, service = svc) => taskRequest(makeTask({ serviceId: service.ID, ...p }), service);
const running = (ni: NodeInfo, serviceId: string, n: number, p: Partial<TaskInput> = {}) => {
  for (let i = 0; i < n; i++) {
    const x = makeTask({ serviceId, nodeId: ni.id, state: 'running', ...p });
    ni.addTask(x.ID, occupancy(x, undefined)!);
  }
};
const perNode = (r: ReturnType<typeof placeGroup>, list: NodeInfo[]) => list.map((ni) => [...r.placed.values()].filter((x) => x === ni).length);

/** a deterministic generator for the random strategy */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('strategy names', (t) => {
  t.true(isStrategy('spread'));
  t.true(isStrategy('binpack'));
  t.true(isStrategy('random'));
  t.false(isStrategy('fastest'));
  t.false(isStrategy(undefined));
});

test('spread: evens out tasks of the service across nodes', (t) => {
  const list = nodes([{}, {}, {}]);
  const r = placeGroup(list, req(), ids(7));
  t.deepEqual(r.unplaced, []);
  t.deepEqual(perNode(r, list), [3, 2, 2]);
  t.is(list[0]!.serviceTasks(svc.ID), 3, 'placements are recorded on the nodes');
});

test('spread: fewest tasks of the service first, then fewest tasks in total', (t) => {
  const list = nodes([{}, {}, {}]);
  running(list[0]!, svc.ID, 2);
  running(list[1]!, 'other', 5);
  running(list[2]!, 'other', 1);
  // n1 and n2 have 0 of svc1; n2 has fewer tasks in total
  const r = placeGroup(list, req(), ids(3));
  t.deepEqual(perNode(r, list), [0, 1, 2]);
  t.is(r.placed.get('t0'), list[2]);
});

test('spread is the default and ignores nodes that do not pass the filters', (t) => {
  const list = nodes([{ availability: 'drain' }, { state: 'down' }, {}, {}]);
  const r = placeGroup(list, req(), ids(4));
  t.deepEqual(perNode(r, list), [0, 0, 2, 2]);
});

test('binpack: fills the fullest node that still fits, then the next', (t) => {
  const list = nodes([{ cpus: 4 }, { cpus: 4 }, { cpus: 4 }]);
  running(list[1]!, 'other', 1, { cpus: 1 });
  const r = placeGroup(list, req({ cpus: 1 }), ids(5), { strategy: 'binpack' });
  t.deepEqual(r.unplaced, []);
  // n1 is fullest: it takes 3 more (4 CPUs), then n0 (tie with n2 broken by order)
  t.deepEqual(perNode(r, list), [2, 3, 0]);
});

test('binpack: ties on fill go to the node with most tasks', (t) => {
  const list = nodes([{}, {}, {}]);
  running(list[2]!, 'other', 2);
  const r = placeGroup(list, req(), ids(4), { strategy: 'binpack' });
  t.deepEqual(perNode(r, list), [0, 0, 4]);
});

test('binpack: memory counts too', (t) => {
  const list = nodes([{ memGiB: 8 }, { memGiB: 8 }]);
  running(list[1]!, 'other', 1, { memGiB: 4 });
  const r = placeGroup(list, req({ memGiB: 3 }), ids(3), { strategy: 'binpack' });
  t.deepEqual(perNode(r, list), [2, 1]);
});

test('random: deterministic with a seeded source, uses only eligible nodes, respects capacity', (t) => {
  const mk = () => nodes([{ cpus: 2 }, { cpus: 2, availability: 'drain' }, { cpus: 2 }, { cpus: 2 }]);
  const a = mk();
  const ra = placeGroup(a, req({ cpus: 1 }), ids(6), { strategy: 'random', random: lcg(7) });
  t.deepEqual(ra.unplaced, []);
  t.deepEqual(perNode(ra, a), [2, 0, 2, 2]);
  const b = mk();
  const rb = placeGroup(b, req({ cpus: 1 }), ids(6), { strategy: 'random', random: lcg(7) });
  t.deepEqual([...rb.placed].map(([k, v]) => [k, v.id]), [...ra.placed].map(([k, v]) => [k, v.id]));
  const c = nodes([{}, {}, {}, {}, {}]);
  const rc = placeGroup(c, req(), ids(500), { strategy: 'random', random: lcg(1) });
  t.true(perNode(rc, c).every((n) => n > 50), 'all nodes get some');
});

test('capacity runs out: the rest is unplaced with a reason', (t) => {
  const list = nodes([{ cpus: 2 }, { cpus: 1 }, { availability: 'drain' }]);
  for (const strategy of ['spread', 'binpack', 'random'] as const) {
    const fresh = nodes([{ cpus: 2 }, { cpus: 1 }, { availability: 'drain' }]);
    const r = placeGroup(fresh, req({ cpus: 1 }), ids(5), { strategy, random: lcg(3) });
    t.is(r.placed.size, 3, strategy);
    t.deepEqual(r.unplaced, ['t3', 't4'], strategy);
    t.is(r.reason, 'no suitable node (insufficient resources on 2 nodes; 1 node not available for new tasks)', strategy);
  }
  t.is(placeGroup(list, req({ constraints: ['node.role==manager'] }), ids(1)).reason,
    'no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node not available for new tasks)');
});

test('host ports and max replicas limit placements per node within one group', (t) => {
  const web = makeService({ id: 'web', ports: [{ TargetPort: 80, PublishedPort: 80, PublishMode: 'host' }] });
  const list = nodes([{}, {}, {}]);
  const r = placeGroup(list, req({}, web), ids(4));
  t.deepEqual(perNode(r, list), [1, 1, 1]);
  t.is(r.reason, 'no suitable node (host-mode port already in use on 3 nodes)');
  const list2 = nodes([{}, {}]);
  const r2 = placeGroup(list2, req({ maxReplicas: 2 }), ids(5), { strategy: 'binpack' });
  t.deepEqual(perNode(r2, list2), [2, 2]);
  t.is(r2.reason, 'no suitable node (max replicas per node limit exceed)');
});

test('placement preferences: spread over a label first, then the strategy inside', (t) => {
  const list = nodes([
    { labels: { zone: 'a' } }, { labels: { zone: 'a' } }, { labels: { zone: 'a' } },
    { labels: { zone: 'b' } },
  ]);
  const r = placeGroup(list, req({ spreadOver: ['node.labels.zone'] }), ids(6));
  // 3 per zone; zone a's three spread inside it
  t.deepEqual(perNode(r, list), [1, 1, 1, 3]);
});

test('placement preferences: existing tasks count; nodes without the label form their own branch', (t) => {
  const list = nodes([{ labels: { zone: 'a' } }, { labels: { zone: 'b' } }, {}]);
  running(list[0]!, svc.ID, 2);
  const r = placeGroup(list, req({ spreadOver: ['node.labels.zone'] }), ids(4));
  t.deepEqual(perNode(r, list), [0, 2, 2]);
});

test('placement preferences: a full branch is skipped', (t) => {
  const list = nodes([{ labels: { zone: 'a' }, cpus: 1 }, { labels: { zone: 'b' }, cpus: 8 }]);
  const r = placeGroup(list, req({ cpus: 1, spreadOver: ['node.labels.zone'] }), ids(5));
  t.deepEqual(perNode(r, list), [1, 4]);
  t.deepEqual(r.unplaced, []);
});

test('nested preferences', (t) => {
  const list = nodes([
    { labels: { dc: 'x', rack: '1' } }, { labels: { dc: 'x', rack: '2' } },
    { labels: { dc: 'y', rack: '1' } }, { labels: { dc: 'y', rack: '1' } },
  ]);
  const r = placeGroup(list, req({ spreadOver: ['node.labels.dc', 'node.labels.rack'] }), ids(8));
  t.deepEqual(perNode(r, list), [2, 2, 2, 2]);
});

test('placeOnNode checks only the given node', (t) => {
  const [ni] = nodes([{ cpus: 1 }]);
  t.is(placeOnNode(ni, req({ cpus: 1 }), 'a'), undefined);
  t.is(ni!.reservedCpu, 1e9);
  t.is(placeOnNode(ni, req({ cpus: 1 }), 'b'), 'insufficient resources on 1 node');
  t.is(placeOnNode(undefined, req(), 'c'), 'node not found');
  const [drained] = nodes([{ availability: 'drain' }]);
  t.is(placeOnNode(drained, req(), 'd'), '1 node not available for new tasks');
});

test('a shared static-filter cache gives the same placements as none', (t) => {
  const inputs: NodeInput[] = Array.from({ length: 12 }, (_, i) => ({
    cpus: 1 + (i % 3), labels: { zone: `z${i % 2}` }, availability: i === 5 ? 'drain' : 'active', role: i < 4 ? 'manager' : 'worker',
  }));
  const groups: Array<[Partial<TaskInput>, number]> = [
    [{ cpus: 0.5 }, 9], [{ cpus: 0.5, constraints: ['node.role==manager'] }, 3], [{ constraints: ['node.labels.zone==z1'] }, 1],
    [{ cpus: 1, constraints: ['node.role==manager'] }, 1], [{ platforms: [{ OS: 'windows' }] }, 1], [{ cpus: 0.25 }, 1],
  ];
  for (const strategy of ['spread', 'binpack', 'random'] as const) {
    const run = (withCache: boolean) => {
      const list = nodes(inputs);
      const cache = withCache ? new StaticCache(list) : undefined;
      return groups.map(([p, n], g) => {
        const r = placeGroup(list, req(p, makeService({ id: `s${g}` })), ids(n, `g${g}-`), { strategy, cache, random: lcg(g + 1) });
        return { placed: [...r.placed].map(([k, v]) => [k, v.id]), unplaced: r.unplaced, reason: r.reason };
      });
    };
    const a = run(true);
    t.deepEqual(a, run(false), strategy);
    t.is(a[4]!.reason, 'no suitable node (unsupported platform on 11 nodes; 1 node not available for new tasks)', strategy);
  }
});

test('a group of one task takes the best node by a scan', (t) => {
  const list = nodes([{}, {}, {}]);
  running(list[0]!, 'other', 1);
  running(list[1]!, svc.ID, 1);
  t.is(placeGroup(list, req(), ['a']).placed.get('a'), list[2], 'spread');
  t.is(placeGroup(nodes([{}, {}, {}]).map((ni, i) => (running(ni, 'x', i), ni)), req(), ['b'], { strategy: 'binpack' }).placed.size, 1);
  const full = nodes([{ cpus: 1 }]);
  const r = placeGroup(full, req({ cpus: 2 }), ['c']);
  t.deepEqual(r.unplaced, ['c']);
  t.is(r.reason, 'no suitable node (insufficient resources on 1 node)');
  const bp = nodes([{}, {}, {}]);
  running(bp[1]!, 'x', 2);
  t.is(placeGroup(bp, req(), ['d'], { strategy: 'binpack' }).placed.get('d'), bp[1]);
  const rnd = nodes([{}, { state: 'down' }, {}]);
  t.is(placeGroup(rnd, req(), ['e'], { strategy: 'random', random: () => 0.99 }).placed.get('e'), rnd[2]);
});
