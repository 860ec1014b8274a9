// Owns a manager's control plane: the store, the CA, the management port and
// the leader's pipeline (allocator, orchestrator, scheduler, dispatcher,
// liveness: ha/leader-work.ts). On the embedded store the manager always
// leads; on etcd (ha/plane.ts) it campaigns, runs a term of leader work on
// the fenced store while elected and drops it the moment it is deposed.
// It also creates the cluster's first objects at `swarm init`.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { newId, nowIso } from '../common/ids.js';
import type { Cluster, Node, NodeDescription, NodeRole, SwarmSpec } from '../common/types.js';
import type { ControlPlane } from '../api/backend.js';
import { unavailable } from '../common/errors.js';
import { caDigest, createRootCA, issueNodeCert, tlsInfo, type NodeCert, type RootCA } from './ca/ca.js';
import { makeToken } from './ca/tokens.js';
import type { Dispatcher } from './dispatcher/dispatcher.js';
import { ClusterServer } from './dispatcher/server.js';
import { NetMapPublisher } from './dispatcher/netmap.js';
import { LeaderWork } from './ha/leader-work.js';
import type { EtcdPlane } from './ha/plane.js';
import { ManagerRoles, quorumGuard } from './ha/roles.js';
import { logBroker } from './logs/broker.js';
import { EmbeddedStore } from './store/embedded.js';
import { configureDataKey } from './secrets/datakey.js';
import type { Store } from './store/types.js';

function readCA(dir: string): RootCA {
  return { certPem: readFileSync(join(dir, 'ca.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'ca-key.pem'), 'utf8') };
}

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
  /** the store the API reads and writes (on etcd: every manager's, guarded for demotions) */
  readonly store: Store;
  readonly netmaps: NetMapPublisher;
  private server?: ClusterServer;
  private work?: LeaderWork;
  private roles?: ManagerRoles;
  private started = false;
  nodeId?: string;

  private constructor(private readonly raw: Store, readonly ca: RootCA, readonly ha?: EtcdPlane) {
    this.store = ha ? quorumGuard(raw, ha) : raw;
    this.netmaps = new NetMapPublisher(raw);
  }

  /** the current term's pipeline (always there on an embedded manager; on etcd only while leading) */
  get leaderWork(): LeaderWork | undefined { return this.work; }
  get dispatcher(): Dispatcher {
    if (!this.work) throw unavailable('this manager is not the leader');
    return this.work.dispatcher;
  }
  get isLeader(): boolean { return !!this.work?.running; }

  /** host:port of the leader's management port, as last observed */
  leaderAddr(): string | undefined {
    if (!this.ha) return this.nodeId && this.raw.get('nodes', this.nodeId)?.ManagerStatus?.Addr;
    const id = this.ha.leader();
    return id ? this.raw.get('nodes', id)?.ManagerStatus?.Addr : undefined;
  }

  sessions(): number {
    return this.server?.sessionCount ?? 0;
  }

  heartbeats(): number {
    return this.work?.liveness.beats ?? 0;
  }

  heartbeatPeriodMs(): number {
    return (this.raw.list('cluster')[0]?.Spec.Dispatcher?.HeartbeatPeriod ?? 1e9) / 1e6;
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
    const ha = this.ha;
    this.server = new ClusterServer({
      store: this.raw, ca: this.ca, cert, netmaps: this.netmaps,
      work: () => (this.work?.running ? this.work : undefined),
      leaderAddr: () => this.leaderAddr(),
      heartbeatPeriodMs: () => this.heartbeatPeriodMs(),
      managers: ha ? { add: (id, ip) => ha.addManager(id, ip), needsEtcd: ha.agentManaged } : undefined,
    });
    return this.server.listen(host, port);
  }

  static hasState(stateDir: string): boolean {
    return existsSync(join(stateDir, 'ca', 'ca-key.pem')) && EmbeddedStore.exists(stateDir);
  }

  /** a manager on an etcd plane (its CA files written by the caller: init creates, join fetches from etcd) */
  static async openEtcd(stateDir: string, plane: EtcdPlane): Promise<Manager> {
    configureDataKey(plane.store, stateDir);
    return new Manager(plane.store, readCA(join(stateDir, 'ca')), plane);
  }

  /** makes a new swarm CA under <stateDir>/ca */
  static async createCA(stateDir: string): Promise<RootCA> {
    const ca = await createRootCA();
    Manager.writeCA(stateDir, ca);
    return ca;
  }

  static writeCA(stateDir: string, ca: RootCA): void {
    const caDir = join(stateDir, 'ca');
    mkdirSync(caDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(caDir, 'ca.pem'), ca.certPem);
    writeFileSync(join(caDir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  }

  /** opens an existing manager's state, or creates a new CA when `create` */
  static async open(stateDir: string, create = false): Promise<Manager> {
    const caDir = join(stateDir, 'ca');
    const ca = create ? await Manager.createCA(stateDir) : readCA(caDir);
    const store = await EmbeddedStore.open(stateDir);
    configureDataKey(store, stateDir);
    return new Manager(store, ca);
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

  /** embedded: leader work at once; etcd: campaign, and lead while elected */
  start(): void {
    if (this.started) return;
    this.started = true;
    const ha = this.ha;
    if (!ha) { this.beginTerm(this.raw); return; }
    ha.startElection({
      onElected: (fence) => this.beginTerm(ha.store.fenced(fence)),
      onDeposed: (reason) => this.endTerm(reason),
    });
  }

  private beginTerm(store: Store): void {
    this.endTerm('new term');
    const work = new LeaderWork(store, () => this.heartbeatPeriodMs(), () => this.nodeId);
    this.work = work;
    work.start();
    if (this.ha && this.nodeId) {
      this.roles = new ManagerRoles(store, this.ha, this.nodeId, this.ca, logBroker(this.raw));
      this.roles.start();
    }
  }

  /** stops leader work at once and drops the worker sessions (they go to the new leader) */
  private endTerm(reason: string): void {
    const work = this.work;
    if (!work) return;
    this.work = undefined;
    this.roles?.stop();
    this.roles = undefined;
    void work.stop();
    this.server?.dropSessions(reason);
  }

  /** a demoted leader stops campaigning so that another manager removes its member */
  async resign(): Promise<void> {
    await this.ha?.stopElection();
  }

  async stop(opts: { destroy?: boolean } = {}): Promise<void> {
    await this.server?.close();
    const work = this.work;
    this.endTerm('stopping');
    await work?.stop();
    this.netmaps.close();
    if (this.ha) await this.ha.close(opts);
    else await this.raw.close();
  }

  cluster(): Cluster {
    const c = this.raw.list('cluster')[0];
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
