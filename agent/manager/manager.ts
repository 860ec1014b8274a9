// Owns a manager's control plane: the store, the CA, and the pipeline stages
// (allocator, orchestrator, scheduler, dispatcher) started and stopped as one.
// It also creates the cluster's first objects at `swarm init`.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { newId, nowIso } from '../common/ids.js';
import type { Cluster, Node, NodeDescription, NodeRole, SwarmSpec } from '../common/types.js';
import type { ControlPlane } from '../api/backend.js';
import { Allocator } from './allocator/allocator.js';
import { caDigest, createRootCA, issueNodeCert, tlsInfo, type NodeCert, type RootCA } from './ca/ca.js';
import { makeToken } from './ca/tokens.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { Liveness } from './dispatcher/liveness.js';
import { ClusterServer } from './dispatcher/server.js';
import { NetMapPublisher } from './dispatcher/netmap.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { Scheduler } from './scheduler/scheduler.js';
import { EmbeddedStore } from './store/embedded.js';
import type { Store } from './store/types.js';

export const DEFAULT_SWARM_SPEC: SwarmSpec = {
  Name: 'default',
  Labels: {},
  Orchestration: { TaskHistoryRetentionLimit: 5 },
  Raft: { SnapshotInterval: 10000, KeepOldSnapshots: 0, LogEntriesForSlowFollowers: 500, ElectionTick: 10, HeartbeatTick: 1 },
  // Swarm's default is 5 s; 1 s lets a lost node be noticed in about 3 s
  Dispatcher: { HeartbeatPeriod: 1_000_000_000 },
  CAConfig: { NodeCertExpiry: 7_776_000_000_000_000 },
  TaskDefaults: {},
  EncryptionConfig: { AutoLockManagers: false },
};

/** merges a user's (partial, zero-valued) spec over the defaults, as swarmkit does */
export function mergeSwarmSpec(base: SwarmSpec, user: SwarmSpec | undefined): SwarmSpec {
  const out = structuredClone(base);
  if (!user) return out;
  if (user.Name) out.Name = user.Name;
  if (user.Labels) out.Labels = { ...user.Labels };
  if (user.Orchestration?.TaskHistoryRetentionLimit !== undefined && user.Orchestration.TaskHistoryRetentionLimit !== 0)
    out.Orchestration = { TaskHistoryRetentionLimit: user.Orchestration.TaskHistoryRetentionLimit };
  if (user.Dispatcher?.HeartbeatPeriod) out.Dispatcher = { HeartbeatPeriod: user.Dispatcher.HeartbeatPeriod };
  if (user.CAConfig?.NodeCertExpiry) out.CAConfig = { ...out.CAConfig, NodeCertExpiry: user.CAConfig.NodeCertExpiry };
  if (user.TaskDefaults) out.TaskDefaults = user.TaskDefaults;
  if (user.EncryptionConfig) out.EncryptionConfig = { AutoLockManagers: !!user.EncryptionConfig.AutoLockManagers };
  return out;
}

export interface BootstrapRequest {
  clusterId: string;
  nodeId: string;
  description: NodeDescription;
  addr: string;          // the node's advertised address
  managerAddr: string;   // host:port other nodes reach the manager at
  spec?: SwarmSpec;
  availability?: Node['Spec']['Availability'];
  defaultAddrPool?: string[] | null;
  subnetSize?: number;
  dataPathPort?: number;
}

export class Manager implements ControlPlane {
  readonly allocator: Allocator;
  readonly orchestrator: Orchestrator;
  readonly scheduler: Scheduler;
  readonly dispatcher: Dispatcher;
  readonly liveness: Liveness;
  readonly netmaps: NetMapPublisher;
  private server?: ClusterServer;
  nodeId?: string;

  private constructor(readonly store: Store, readonly ca: RootCA) {
    this.allocator = new Allocator(store);
    this.orchestrator = new Orchestrator(store);
    this.scheduler = new Scheduler(store);
    this.dispatcher = new Dispatcher(store);
    this.netmaps = new NetMapPublisher(store);
    this.liveness = new Liveness(store, this.dispatcher, () => this.heartbeatPeriodMs(), () => this.nodeId);
  }

  sessions(): number {
    return this.server?.sessionCount ?? 0;
  }

  heartbeats(): number {
    return this.liveness.beats;
  }

  heartbeatPeriodMs(): number {
    return (this.store.list('cluster')[0]?.Spec.Dispatcher?.HeartbeatPeriod ?? 1e9) / 1e6;
  }

  /** the manager's own certificate for the management port, made once */
  static async nodeCert(stateDir: string, ca: RootCA, nodeId: string, clusterId: string): Promise<NodeCert> {
    const dir = join(stateDir, 'certs');
    if (existsSync(join(dir, 'node.pem'))) {
      return { certPem: readFileSync(join(dir, 'node.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'node-key.pem'), 'utf8'), caPem: ca.certPem };
    }
    const cert = await issueNodeCert(ca, nodeId, 'manager', clusterId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'node-key.pem'), cert.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'node.pem'), cert.certPem);
    writeFileSync(join(dir, 'ca.pem'), cert.caPem);
    return cert;
  }

  /** serves joins and worker sessions on the management port; returns the bound port */
  async listen(stateDir: string, nodeId: string, host: string, port: number): Promise<number> {
    this.nodeId = nodeId;
    const cert = await Manager.nodeCert(stateDir, this.ca, nodeId, this.cluster().ID);
    this.server = new ClusterServer({
      store: this.store, ca: this.ca, cert, dispatcher: this.dispatcher, liveness: this.liveness, netmaps: this.netmaps,
      heartbeatPeriodMs: () => this.heartbeatPeriodMs(), canAddManagers: false,
    });
    return this.server.listen(host, port);
  }

  static hasState(stateDir: string): boolean {
    return existsSync(join(stateDir, 'ca', 'ca-key.pem')) && EmbeddedStore.exists(stateDir);
  }

  /** opens an existing manager's state, or creates a new CA when `create` */
  static async open(stateDir: string, create = false): Promise<Manager> {
    const caDir = join(stateDir, 'ca');
    let ca: RootCA;
    if (create) {
      ca = await createRootCA();
      mkdirSync(caDir, { recursive: true, mode: 0o700 });
      writeFileSync(join(caDir, 'ca.pem'), ca.certPem);
      writeFileSync(join(caDir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    } else {
      ca = { certPem: readFileSync(join(caDir, 'ca.pem'), 'utf8'), keyPem: readFileSync(join(caDir, 'ca-key.pem'), 'utf8') };
    }
    return new Manager(await EmbeddedStore.open(stateDir), ca);
  }

  /** writes the cluster object and the first manager's node object */
  async bootstrap(req: BootstrapRequest): Promise<void> {
    const now = nowIso();
    const digest = caDigest(this.ca.certPem);
    const tls = await tlsInfo(this.ca.certPem);
    await this.store.update((tx) => {
      const cluster: Cluster = {
        ID: req.clusterId, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now,
        Spec: mergeSwarmSpec(DEFAULT_SWARM_SPEC, req.spec),
        TLSInfo: tls,
        RootRotationInProgress: false,
        DefaultAddrPool: req.defaultAddrPool?.length ? req.defaultAddrPool : null,
        SubnetSize: req.subnetSize || 24,
        DataPathPort: req.dataPathPort || 4789,
        JoinTokens: { Worker: makeToken(digest), Manager: makeToken(digest) },
      };
      tx.create('cluster', cluster);
      const node: Node = {
        ID: req.nodeId, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now,
        Spec: { Labels: {}, Role: 'manager', Availability: req.availability || 'active' },
        Description: { ...req.description, TLSInfo: tls },
        Status: { State: 'ready', Addr: req.addr },
        ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: req.managerAddr },
      };
      tx.create('nodes', node);
      // the routing mesh's network, as Swarm creates it (the allocator gives it 10.0.0.0/24 first)
      tx.create('networks', {
        ID: newId(), Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now,
        Spec: { Name: 'ingress', Labels: {}, DriverConfiguration: { Name: 'overlay' }, Ingress: true, Scope: 'swarm' },
      });
    });
  }

  start(): void {
    this.liveness.start();
    this.allocator.start();
    this.scheduler.start();
    this.orchestrator.start();
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.liveness.stop();
    this.allocator.stop();
    this.scheduler.stop();
    await this.orchestrator.stop();
    this.dispatcher.close();
    this.netmaps.close();
    await this.store.close();
  }

  cluster(): Cluster {
    const c = this.store.list('cluster')[0];
    if (!c) throw new Error('cluster object missing');
    return c;
  }

  async rotateJoinToken(role: NodeRole): Promise<void> {
    const digest = caDigest(this.ca.certPem);
    await this.store.update((tx) => {
      const c = tx.list('cluster')[0];
      const JoinTokens = { ...c.JoinTokens, [role === 'manager' ? 'Manager' : 'Worker']: makeToken(digest) };
      tx.update('cluster', { ...c, JoinTokens });
    });
  }
}
