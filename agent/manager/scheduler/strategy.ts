// Owns ranking: the strategies that pick, among eligible nodes, where the next
// task of a group goes. spread = fewest tasks of the service, then fewest tasks
// in total; binpack = the fullest node (reserved CPU+memory share, then most
// tasks) that still fits; random = uniform. Pickers are built once per group
// and updated per placement in O(log n) (heaps) or O(1) (random).
import type { NodeInfo } from './nodeinfo.js';

export type StrategyName = 'spread' | 'binpack' | 'random';
export const STRATEGIES: readonly StrategyName[] = ['spread', 'binpack', 'random'];

export function isStrategy(s: unknown): s is StrategyName {
  return typeof s === 'string' && (STRATEGIES as readonly string[]).includes(s);
}

/** chooses nodes for the tasks of one group, one at a time */
export interface Picker {
  /** the node the next task should go to, or undefined when no node is left */
  peek(): NodeInfo | undefined;
  /** the node from peek() took a task; `fitsMore` says whether it can take another */
  placed(fitsMore: boolean): void;
}

interface Entry { ni: NodeInfo; svc: number; fill: number }

/** binary heap over entries; `before(a, b)` = a ranks ahead of b */
class Heap {
  constructor(private readonly a: Entry[], private readonly before: (x: Entry, y: Entry) => boolean) {
    for (let i = (a.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  top(): Entry | undefined { return this.a[0]; }

  popTop(): void {
    const last = this.a.pop();
    if (this.a.length > 0 && last) {
      this.a[0] = last;
      this.down(0);
    }
  }

  down(i: number): void {
    const a = this.a;
    const n = a.length;
    const x = a[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.before(a[c + 1]!, a[c]!)) c++;
      if (!this.before(a[c]!, x)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = x;
  }
}

class HeapPicker implements Picker {
  private readonly heap: Heap;
  constructor(nodes: readonly NodeInfo[], serviceId: string, before: (x: Entry, y: Entry) => boolean) {
    this.heap = new Heap(nodes.map((ni) => ({ ni, svc: ni.serviceTasks(serviceId), fill: ni.fill() })), before);
  }

  peek(): NodeInfo | undefined { return this.heap.top()?.ni; }

  placed(fitsMore: boolean): void {
    const e = this.heap.top();
    if (!e) return;
    if (!fitsMore) {
      this.heap.popTop();
      return;
    }
    e.svc++;
    e.fill = e.ni.fill();
    this.heap.down(0);
  }
}

const spreadBefore = (x: Entry, y: Entry): boolean =>
  x.svc !== y.svc ? x.svc < y.svc
    : x.ni.activeTasks !== y.ni.activeTasks ? x.ni.activeTasks < y.ni.activeTasks
      : x.ni.seq < y.ni.seq;

const binpackBefore = (x: Entry, y: Entry): boolean =>
  x.fill !== y.fill ? x.fill > y.fill
    : x.ni.activeTasks !== y.ni.activeTasks ? x.ni.activeTasks > y.ni.activeTasks
      : x.ni.seq < y.ni.seq;

class RandomPicker implements Picker {
  private readonly nodes: NodeInfo[];
  private current = -1;
  constructor(nodes: readonly NodeInfo[], private readonly rand: () => number) {
    this.nodes = nodes.slice();
  }

  peek(): NodeInfo | undefined {
    if (this.nodes.length === 0) return undefined;
    if (this.current < 0) this.current = Math.min(this.nodes.length - 1, Math.floor(this.rand() * this.nodes.length));
    return this.nodes[this.current];
  }

  placed(fitsMore: boolean): void {
    if (this.current < 0) return;
    if (!fitsMore) {
      const last = this.nodes.pop()!;
      if (this.current < this.nodes.length) this.nodes[this.current] = last;
    }
    this.current = -1;
  }
}

/**
 * The node one task goes to, by a single scan (no picker to build): what a
 * group of one task needs. `accept` filters nodes during the scan.
 */
export function bestNode(strategy: StrategyName, nodes: readonly NodeInfo[], serviceId: string,
  accept: (ni: NodeInfo) => boolean, opts: PickerOptions = {}): NodeInfo | undefined {
  if (strategy === 'random') {
    const ok = nodes.filter(accept);
    return ok.length ? ok[Math.min(ok.length - 1, Math.floor((opts.random ?? Math.random)() * ok.length))] : undefined;
  }
  const binpack = strategy === 'binpack';
  let best: NodeInfo | undefined;
  let bestSvc = 0;
  let bestFill = 0;
  for (const ni of nodes) {
    if (!accept(ni)) continue;
    const svc = binpack ? 0 : ni.serviceTasks(serviceId);
    const fill = binpack ? ni.fill() : 0;
    if (best) {
      if (binpack) {
        if (fill !== bestFill ? fill < bestFill : ni.activeTasks !== best.activeTasks ? ni.activeTasks < best.activeTasks : ni.seq > best.seq) continue;
      } else if (svc !== bestSvc ? svc > bestSvc : ni.activeTasks !== best.activeTasks ? ni.activeTasks > best.activeTasks : ni.seq > best.seq) {
        continue;
      }
    }
    best = ni;
    bestSvc = svc;
    bestFill = fill;
  }
  return best;
}

export interface PickerOptions {
  /** source of randomness for `random` (default Math.random) */
  random?: () => number;
}

/** a picker over `nodes` (all eligible) for tasks of `serviceId` */
export function makePicker(strategy: StrategyName, nodes: readonly NodeInfo[], serviceId: string, opts: PickerOptions = {}): Picker {
  switch (strategy) {
    case 'binpack': return new HeapPicker(nodes, serviceId, binpackBefore);
    case 'random': return new RandomPicker(nodes, opts.random ?? Math.random);
    default: return new HeapPicker(nodes, serviceId, spreadBefore);
  }
}
