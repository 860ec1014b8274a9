// A control plane without dockerd for unit tests of orchestration logic: a
// MemoryStore, the real allocator, scheduler and orchestrator, in-memory nodes,
// and a simulated worker that moves assigned tasks to running (or fails them).
import { MemoryStore } from '../../agent/manager/store/memory.js';
import { Orchestrator } from '../../agent/manager/orchestrator/orchestrator.js';
import { Allocator } from '../../agent/manager/allocator/allocator.js';
import { Scheduler } from '../../agent/manager/scheduler/scheduler.js';
import { isTerminal } from '../../agent/common/taskstate.js';
import { newId, nowIso } from '../../agent/common/ids.js';
import type { Node, Service, ServiceSpec, Task, TaskState } from '../../agent/common/types.js';
import { DEFAULT_SWARM_SPEC } from '../../agent/manager/manager.js';

export function simNode(hostname: string, extra: Partial<Node['Spec']> = {}): Node {
  return {
    ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Role: 'worker', Availability: 'active', Labels: {}, ...extra },
    Description: { Hostname: hostname, Platform: { Architecture: 'x86_64', OS: 'linux' }, Resources: { NanoCPUs: 4e9, MemoryBytes: 8 << 30 }, Engine: { EngineVersion: 'sim', Plugins: [] } },
    Status: { State: 'ready', Addr: '127.0.0.1' },
  };
}

export class Sim {
  store = new MemoryStore();
  orchestrator = new Orchestrator(this.store);
  allocator = new Allocator(this.store);
  scheduler = new Scheduler(this.store);
  /** tasks the simulated worker fails instead of running */
  failImage = new Set<string>();
  private unwatch?: () => void;

  async start(nodes: Node[]): Promise<void> {
    await this.store.update((tx) => {
      tx.create('cluster', { ID: 'c', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: DEFAULT_SWARM_SPEC, TLSInfo: { TrustRoot: '', CertIssuerPublicKey: '', CertIssuerSubject: '' }, RootRotationInProgress: false, DefaultAddrPool: null, SubnetSize: 24, DataPathPort: 4789, JoinTokens: { Worker: '', Manager: '' } });
      for (const n of nodes) tx.create('nodes', n);
    });
    this.allocator.start();
    this.scheduler.start();
    this.orchestrator.start();
    this.unwatch = this.store.watch(() => setImmediate(() => void this.work()));
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    this.allocator.stop();
    this.scheduler.stop();
    await this.orchestrator.stop();
  }

  /** the simulated workers: assigned → running (or failed); desired shutdown → shutdown */
  private working = false;
  private async work(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      await this.store.update((tx) => {
        for (const t of tx.list('tasks')) {
          const next = this.next(t);
          if (next) tx.update('tasks', { ...t, Status: { ...t.Status, State: next, Timestamp: nowIso(), ...(next === 'failed' ? { Err: 'task: non-zero exit (1)' } : {}) } });
        }
      });
    } finally {
      this.working = false;
    }
  }

  private next(t: Task): TaskState | undefined {
    if (isTerminal(t.Status.State)) return undefined;
    if (t.DesiredState !== 'running' && t.Status.State !== 'new' && t.Status.State !== 'pending') return 'shutdown';
    if (t.Status.State === 'assigned') return this.failImage.has(t.Spec.ContainerSpec.Image) ? 'failed' : 'running';
    return undefined;
  }

  async createService(spec: Partial<ServiceSpec> & { Name: string }): Promise<Service> {
    const svc: Service = {
      ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
      Spec: { TaskTemplate: { ContainerSpec: { Image: 'img:1' } }, Mode: { Replicated: { Replicas: 1 } }, UpdateConfig: { Monitor: 100e6 }, RollbackConfig: { Monitor: 100e6 }, ...spec },
      Endpoint: { Spec: {} }, SpecVersion: 1,
    };
    return this.store.update((tx) => tx.create('services', svc));
  }

  async updateService(id: string, fn: (s: Service) => void, bump = true): Promise<void> {
    await this.store.update((tx) => {
      const s = tx.get('services', id)!;
      s.PreviousSpec = structuredClone(s.Spec);
      fn(s);
      if (bump) { s.SpecVersion = (s.SpecVersion ?? 1) + 1; s.UpdateStatus = { State: 'updating', Message: 'update in progress', StartedAt: nowIso() }; }
      tx.update('services', s);
    });
  }

  tasks(serviceId: string, filter: (t: Task) => boolean = () => true): Task[] {
    return this.store.byIndex('tasks', 'service', serviceId).filter(filter);
  }

  running(serviceId: string): Task[] {
    return this.tasks(serviceId, (t) => t.DesiredState === 'running' && t.Status.State === 'running');
  }

  async until(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!fn()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
