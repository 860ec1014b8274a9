// Scheduler benchmark: 30,000 tasks onto 1,000 in-memory nodes with spread,
// binpack and random — pure placement (placer.ts on NodeInfos) and a full pass
// of the Scheduler class on a MemoryStore (placement + transactional writes).
// Prints tasks/s; run with `node dist/test/bench/scheduler.js [tasks] [nodes]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { taskRequest } from '../../agent/manager/scheduler/filters.js';
import { makeNode, makeService, makeTask } from '../../agent/manager/scheduler/fixtures.js';
import { NodeInfo } from '../../agent/manager/scheduler/nodeinfo.js';
import { placeGroup, StaticCache } from '../../agent/manager/scheduler/placer.js';
import { Scheduler } from '../../agent/manager/scheduler/scheduler.js';
import type { StrategyName } from '../../agent/manager/scheduler/strategy.js';
import { EmbeddedStore } from '../../agent/manager/store/embedded.js';
import { MemoryStore } from '../../agent/manager/store/memory.js';
import type { Service, Task } from '../../agent/common/types.js';

export interface BenchResult { name: string; tasks: number; nodes: number; ms: number; tasksPerSec: number; note?: string }

const STRATEGIES: StrategyName[] = ['spread', 'binpack', 'random'];

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** `services` services sharing `tasks` pending tasks; each task reserves 0.1 CPU and 128 MiB */
function workload(tasks: number, services: number): { services: Service[]; tasks: Task[] } {
  const svcs = Array.from({ length: services }, (_, i) => makeService({ id: `svc${i}`, name: `svc${i}`, labels: {} }));
  const list: Task[] = [];
  for (let i = 0; i < tasks; i++) {
    const s = svcs[i % services]!;
    list.push(makeTask({ id: `task${i}`, serviceId: s.ID, slot: Math.floor(i / services) + 1, cpus: 0.1, memGiB: 0.125 }));
  }
  return { services: svcs, tasks: list };
}

const nodeInputs = (n: number) => Array.from({ length: n }, (_, i) => makeNode({
  id: `node${i}`, hostname: `host${i}`, cpus: 4, memGiB: 8, labels: { zone: `z${i % 3}` },
}));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** pure placement: group by service, filters once per group and node, strategy per task */
function purePlacement(strategy: StrategyName, tasks: number, nodes: number, services: number, opts: { spreadOver?: boolean } = {}): number {
  const w = workload(tasks, services);
  const infos = nodeInputs(nodes).map((n) => new NodeInfo(n));
  const bySvc = new Map<string, Task[]>();
  for (const t of w.tasks) {
    if (opts.spreadOver) t.Spec.Placement = { Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }] };
    const g = bySvc.get(t.ServiceID);
    if (g) g.push(t);
    else bySvc.set(t.ServiceID, [t]);
  }
  const svcById = new Map(w.services.map((s) => [s.ID, s]));
  const random = seeded(42);
  const t0 = performance.now();
  const cache = new StaticCache(infos);
  let placed = 0;
  for (const [sid, group] of bySvc) {
    const svc = svcById.get(sid);
    const r = placeGroup(infos, taskRequest(group[0]!, svc), group.map((t) => t.ID), { strategy, random, cache });
    placed += r.placed.size;
  }
  const ms = performance.now() - t0;
  if (placed !== tasks) throw new Error(`placed ${placed} of ${tasks}`);
  return ms;
}

/** one Scheduler pass over a MemoryStore holding `tasks` pending tasks */
async function storePass(strategy: StrategyName, tasks: number, nodes: number, services: number, store: MemoryStore = new MemoryStore()): Promise<{ ms: number; placeMs: number; writeMs: number }> {
  const w = workload(tasks, services);
  await store.update((tx) => {
    for (const n of nodeInputs(nodes)) tx.create('nodes', n);
    for (const s of w.services) tx.create('services', { ...s, Spec: { ...s.Spec, Labels: { 'shoal.strategy': strategy } } });
  });
  for (let i = 0; i < w.tasks.length; i += 1000) {
    const chunk = w.tasks.slice(i, i + 1000);
    await store.update((tx) => { for (const t of chunk) tx.create('tasks', t); });
  }
  const sched = new Scheduler(store, { random: seeded(7) });
  const t0 = performance.now();
  await sched.tick();
  const ms = performance.now() - t0;
  const assigned = store.list('tasks', (t) => t.Status.State === 'assigned').length;
  if (assigned !== tasks) throw new Error(`assigned ${assigned} of ${tasks}`);
  return { ms, placeMs: sched.lastPass?.placeMs ?? 0, writeMs: sched.lastPass?.writeMs ?? 0 };
}

/** a started Scheduler: tasks arrive in transactions of `batch`; time until all are assigned */
async function startedScheduler(tasks: number, nodes: number, services: number, batch: number): Promise<number> {
  const store = new MemoryStore();
  const w = workload(tasks, services);
  await store.update((tx) => {
    for (const n of nodeInputs(nodes)) tx.create('nodes', n);
    for (const s of w.services) tx.create('services', s);
  });
  let assigned = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => { done = r; });
  store.watch((changes) => {
    for (const c of changes) if (c.kind === 'tasks' && (c.object as Task).Status.State === 'assigned') assigned++;
    if (assigned >= tasks) done();
  });
  const sched = new Scheduler(store);
  sched.start();
  const t0 = performance.now();
  for (let i = 0; i < w.tasks.length; i += batch) {
    const chunk = w.tasks.slice(i, i + batch);
    await store.update((tx) => { for (const t of chunk) tx.create('tasks', t); });
  }
  const deadline = setTimeout(() => done(), 120_000);
  await finished;
  clearTimeout(deadline);
  const ms = performance.now() - t0;
  sched.stop();
  if (assigned < tasks) throw new Error(`assigned ${assigned} of ${tasks}`);
  return ms;
}

const rate = (tasks: number, ms: number) => Math.round(tasks / (ms / 1000));

export async function main(argv: string[] = process.argv.slice(2)): Promise<BenchResult[]> {
  const tasks = Number(argv[0] ?? 30_000);
  const nodes = Number(argv[1] ?? 1_000);
  const services = 30;
  const results: BenchResult[] = [];
  const report = (r: BenchResult) => {
    results.push(r);
    console.log(`${r.name.padEnd(44)} ${String(r.tasks).padStart(6)} tasks / ${r.nodes} nodes  ${r.ms.toFixed(0).padStart(6)} ms  ${r.tasksPerSec.toLocaleString('en-US').padStart(10)} tasks/s${r.note ? `  (${r.note})` : ''}`);
  };
  console.log(`scheduler benchmark: ${tasks} tasks of ${services} services (0.1 CPU, 128 MiB each) onto ${nodes} nodes (4 CPU, 8 GiB)`);
  purePlacement('spread', 3000, nodes, services); // warm-up
  for (const s of STRATEGIES) {
    const ms = median([0, 1, 2].map(() => purePlacement(s, tasks, nodes, services)));
    report({ name: `pure placement, ${s}`, tasks, nodes, ms, tasksPerSec: rate(tasks, ms), note: 'median of 3' });
  }
  const msPref = median([0, 1, 2].map(() => purePlacement('spread', tasks, nodes, services, { spreadOver: true })));
  report({ name: 'pure placement, spread + preference zone', tasks, nodes, ms: msPref, tasksPerSec: rate(tasks, msPref), note: 'median of 3' });
  const msSolo = median([0, 1, 2].map(() => purePlacement('spread', tasks, nodes, tasks)));
  report({ name: 'pure placement, spread, 1 task per service', tasks, nodes, ms: msSolo, tasksPerSec: rate(tasks, msSolo), note: 'worst case: no grouping' });
  for (const s of STRATEGIES) {
    const r = await storePass(s, tasks, nodes, services);
    report({ name: `Scheduler.tick on MemoryStore, ${s}`, tasks, nodes, ms: r.ms, tasksPerSec: rate(tasks, r.ms), note: `place ${r.placeMs.toFixed(0)} ms, write ${r.writeMs.toFixed(0)} ms` });
  }
  const dir = mkdtempSync(join(tmpdir(), 'shoal-sched-bench-'));
  try {
    const store = await EmbeddedStore.open(dir);
    const r = await storePass('spread', tasks, nodes, services, store);
    await store.close();
    report({ name: 'Scheduler.tick on EmbeddedStore, spread', tasks, nodes, ms: r.ms, tasksPerSec: rate(tasks, r.ms), note: `journal + fsync; place ${r.placeMs.toFixed(0)} ms, write ${r.writeMs.toFixed(0)} ms` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const msStarted = await startedScheduler(tasks, nodes, services, 1000);
  report({ name: 'started Scheduler, tasks arrive 1000 per tx', tasks, nodes, ms: msStarted, tasksPerSec: rate(tasks, msStarted), note: 'includes the creating transactions' });
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
