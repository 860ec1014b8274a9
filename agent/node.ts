// Owns this node's swarm membership and lifecycle: init, join, resume after a
// restart, leave, a manager's demotion to worker, and `swarm init
// --force-new-cluster` (an etcd manager's recovery from a lost quorum). It
// runs the manager (on managers: on the embedded store, or on etcd — an
// agent-managed member or an external cluster, see manager/ha/plane.ts) and
// the worker (always: fed in-process on an embedded manager, through a
// session with the leader everywhere else), and is the SwarmBackend the
// Docker API server talks to.
import { rmSync } from 'node:fs';
import type Docker from 'dockerode';
import { ALREADY_IN_SWARM, NOT_A_MANAGER, NOT_IN_SWARM, type ControlPlane, type LocalSwarmInfo, type SwarmBackend, type SwarmInitRequest, type SwarmJoinRequest } from './api/backend.js';
import { errorMessage, invalid, unavailable } from './common/errors.js';
import { newId } from './common/ids.js';
import { logger } from './common/log.js';
import type { NodeDescription, Task, TaskStatus } from './common/types.js';
import { describeNode, dockerClient } from './docker.js';
import { resolveAdvertise, splitHostPort } from './addr.js';
import { Manager } from './manager/manager.js';
import type { PlaneOptions } from './manager/ha/plane.js';
import { etcdInstalled, ETCD_PACKAGE_HINT, type StoreMode } from './manager/ha/store-mode.js';
import { leaveManagerError, NOT_ENOUGH_MANAGERS } from './manager/ha/quorum.js';
import { readNodeState, writeNodeState, type NodeState } from './node-state.js';
import { Worker } from './worker/worker.js';
import { joinSwarm, loadCerts, saveCerts } from './worker/join.js';
import { ManagerSession } from './worker/session.js';
import { NetAgent } from '../netd/agent.js';
import { removeNodeFiles } from './worker/secrets.js';
import type { SessionMessage } from './common/protocol.js';

const log = logger('node');

/** the etcd plane (etcd3 client, certificates: ~25 MiB) is loaded only by managers that use etcd */
const etcdPlane = async () => (await import('./manager/ha/plane.js')).EtcdPlane;

export interface NodeOptions {
  stateDir: string;
  hostname: string;
  dockerHost: string;
  listenAddr: string;        // default 0.0.0.0:2377
  advertiseAddr?: string;
  /** run netd and the mesh (overlays, DNS, VIPs, published ports); off for control-plane-only agents */
  dataPlane?: boolean;
  /** where a swarm this node initializes keeps its state (default embedded) */
  store?: StoreMode;
  etcdBin?: string;
}

/** what the docker CLI sends when the user gave no --listen-addr */
const CLI_DEFAULT_LISTEN = '0.0.0.0:2377';

/** how the local worker reaches its manager: in-process or over a session */
interface Feed { report(updates: { taskId: string; status: TaskStatus }[]): void; stop(): void }

export class SwarmNode implements SwarmBackend {
  readonly docker: Docker;
  private state?: NodeState;
  private manager?: Manager;
  private worker?: Worker;
  private net?: NetAgent;
  private feed?: Feed;
  private busy = false;
  private description?: NodeDescription;

  constructor(private opts: NodeOptions) {
    this.docker = dockerClient(opts.dockerHost);
  }

  get hostname(): string { return this.opts.hostname; }
  get nodeId(): string | undefined { return this.state?.nodeId; }

  /** resumes the membership recorded in the state directory, if any */
  async start(): Promise<void> {
    const s = readNodeState(this.opts.stateDir);
    if (!s) return;
    this.state = s;
    if (s.role === 'manager') await this.startManager(await this.openManager(s));
    await this.startWorker();
    log.info({ nodeId: s.nodeId, role: s.role }, 'resumed swarm membership');
  }

  async close(): Promise<void> {
    await this.stopLocal();
  }

  info(): LocalSwarmInfo {
    const s = this.state;
    if (!s) return { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null };
    const managers = this.manager
      ? this.manager.store.list('nodes', (n) => !!n.ManagerStatus).map((n) => ({ NodeID: n.ID, Addr: n.ManagerStatus!.Addr }))
      : (s.managers ?? []).map((Addr) => ({ NodeID: '', Addr }));
    return { NodeID: s.nodeId, NodeAddr: s.advertiseAddr, LocalNodeState: 'active', ControlAvailable: !!this.manager, Error: '', RemoteManagers: managers };
  }

  /** the running manager, if this node is one (metrics read it at scrape time) */
  /** this node's data plane (DNS and mesh statistics for metrics), when it runs one */
  get dataPlane(): NetAgent | undefined {
    return this.net;
  }

  get managerPlane(): Manager | undefined {
    return this.manager;
  }

  control(): ControlPlane {
    if (!this.manager) throw unavailable(this.state ? NOT_A_MANAGER : NOT_IN_SWARM);
    // a manager cut off from the quorum answers as Docker's does, rather than from a stale copy
    if (this.manager.ha && !this.manager.ha.hasQuorum()) throw unavailable(`rpc error: code = Unknown desc = ${NOT_ENOUGH_MANAGERS}`);
    return this.manager;
  }

  async init(req: SwarmInitRequest): Promise<string> {
    return this.exclusive(async () => {
      if (this.state && req.ForceNewCluster && this.state.role === 'manager') return this.forceNewCluster(this.state);
      if (this.state) throw unavailable(ALREADY_IN_SWARM);
      const listen = this.listenAddr(req.ListenAddr);
      const adv = resolveAdvertise(req.AdvertiseAddr || this.opts.advertiseAddr, listen.host, listen.port);
      if (req.Availability && !['active', 'pause', 'drain'].includes(req.Availability)) throw invalid(`invalid availability: ${req.Availability}`);
      const description = await this.describe();
      const mode = this.opts.store ?? { kind: 'embedded' };
      if (mode.kind === 'etcd' && !etcdInstalled(this.opts.etcdBin)) throw unavailable(`${ETCD_PACKAGE_HINT}: install it or start the agent with --store embedded`);
      const nodeId = newId();
      const clusterId = newId();
      rmSync(this.opts.stateDir, { recursive: true, force: true });
      let manager: Manager;
      if (mode.kind === 'embedded') {
        manager = await Manager.open(this.opts.stateDir, true);
      } else {
        try {
          const ca = await Manager.createCA(this.opts.stateDir);
          manager = await Manager.openEtcd(this.opts.stateDir, await (await etcdPlane()).init(this.planeOptions(nodeId, adv.host, clusterId, mode), ca));
        } catch (err) {
          rmSync(this.opts.stateDir, { recursive: true, force: true });
          throw err;
        }
      }
      try {
        await manager.bootstrap({
          clusterId, nodeId, description, addr: adv.host, managerAddr: `${adv.host}:${adv.port}`, spec: req.Spec,
          availability: (req.Availability || undefined) as 'active' | undefined,
          defaultAddrPool: req.DefaultAddrPool, subnetSize: req.SubnetSize, dataPathPort: req.DataPathPort,
        });
        this.state = { nodeId, role: 'manager', advertiseAddr: adv.host, listenAddr: `${listen.host}:${listen.port}`, ...(mode.kind === 'embedded' ? {} : { store: mode.kind }) };
        await this.startManager(manager);
      } catch (err) {
        this.state = undefined;
        await manager.stop({ destroy: true });
        rmSync(this.opts.stateDir, { recursive: true, force: true });
        throw err;
      }
      writeNodeState(this.opts.stateDir, this.state);
      await this.startWorker();
      log.info({ nodeId }, 'swarm initialized');
      return nodeId;
    });
  }

  async join(req: SwarmJoinRequest): Promise<void> {
    return this.exclusive(async () => {
      if (this.state) throw unavailable(ALREADY_IN_SWARM);
      const remote = req.RemoteAddrs?.[0];
      if (!remote) throw invalid('at least 1 RemoteAddr is required to join');
      if (!req.JoinToken) throw invalid('join token is required');
      const listen = this.listenAddr(req.ListenAddr);
      const adv = resolveAdvertise(req.AdvertiseAddr || this.opts.advertiseAddr, listen.host, listen.port);
      const { res, keyPem } = await joinSwarm({
        remote, token: req.JoinToken, hostname: this.opts.hostname, advertiseAddr: adv.host,
        description: await this.describe(), availability: (req.Availability || undefined) as 'active' | undefined,
        canRunEtcd: etcdInstalled(this.opts.etcdBin),
      });
      rmSync(this.opts.stateDir, { recursive: true, force: true });
      saveCerts(this.opts.stateDir, { keyPem, certPem: res.certPem, caPem: res.caPem });
      const managers = [...new Set([remote, ...res.managers.map((m) => m.addr)])];
      const state: NodeState = { nodeId: res.nodeId, role: res.role, advertiseAddr: adv.host, listenAddr: `${listen.host}:${listen.port}`, managers };
      if (res.role === 'manager') {
        const mode: StoreMode = res.etcd ? { kind: 'etcd' } : (this.opts.store ?? { kind: 'embedded' });
        if (mode.kind === 'embedded') throw unavailable('this swarm keeps its state in an external etcd: start this agent with --store etcd://host:port[,…] to join it as a manager');
        const { plane, swarmCA } = await (await etcdPlane()).join(this.planeOptions(res.nodeId, adv.host, res.etcd?.clusterToken ?? '', mode), res.etcd);
        Manager.writeCA(this.opts.stateDir, swarmCA);
        this.state = { ...state, store: mode.kind };
        try {
          await this.startManager(await Manager.openEtcd(this.opts.stateDir, plane));
        } catch (err) {
          this.state = undefined;
          await plane.removeManager(res.nodeId).catch(() => false);
          await plane.close({ destroy: true });
          throw err;
        }
      } else {
        this.state = state;
      }
      writeNodeState(this.opts.stateDir, this.state);
      await this.startWorker();
      log.info({ nodeId: res.nodeId, manager: remote }, 'joined swarm');
    });
  }

  async leave(force: boolean): Promise<void> {
    return this.exclusive(async () => {
      if (!this.state) throw unavailable('This node is not part of a swarm');
      const ha = this.manager?.ha;
      if (this.state.role === 'manager' && !force) {
        if (!ha) throw unavailable('You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.');
        const members = ha.agentManaged ? await ha.members().catch(() => undefined) : undefined;
        const reachable = members?.filter((m) => m.healthy).length ?? 0;
        throw unavailable(leaveManagerError(members ? { reachable, unreachable: members.length - reachable } : undefined));
      }
      const nodeId = this.state.nodeId;
      // a manager that leaves takes its etcd member with it (while the others can still agree on that)
      if (ha) await Promise.race([ha.removeManager(nodeId).catch((err) => log.warn({ err: errorMessage(err) }, 'could not remove this etcd member')), sleep(5_000)]);
      await this.stopLocal({ destroy: true });
      await this.removeTaskContainers(nodeId);
      removeNodeFiles(nodeId);
      rmSync(this.opts.stateDir, { recursive: true, force: true });
      this.state = undefined;
      log.info({ nodeId }, 'left the swarm');
    });
  }

  /**
   * `swarm init --force-new-cluster` on a manager: its etcd member restarts as a one-member cluster with
   * all the data (etcd's --force-new-cluster); the other managers stay as nodes, shown Unreachable, and
   * this one is elected. Task containers keep running (the worker is stopped and started, not reset).
   */
  /**
   * `docker node promote` reached this worker: start the etcd member the
   * leader added, take the manager certificate, and run as a manager — the
   * task containers keep running (the worker is stopped and started again,
   * adopting them). On failure the node stays a worker; the leader undoes the
   * promotion when the member never comes up.
   */
  private async promote(m: Extract<SessionMessage, { type: 'promote' }>): Promise<void> {
    return this.exclusive(async () => {
      const s = this.state;
      if (!s || s.role !== 'worker') return;
      if (!etcdInstalled(this.opts.etcdBin)) throw new Error(ETCD_PACKAGE_HINT);
      const { plane, swarmCA } = await (await etcdPlane()).join(this.planeOptions(s.nodeId, s.advertiseAddr, m.etcd.clusterToken, { kind: 'etcd' }), m.etcd);
      await this.stopLocal();
      const tls = loadCerts(this.opts.stateDir)!;
      try {
        Manager.writeCA(this.opts.stateDir, swarmCA);
        saveCerts(this.opts.stateDir, { keyPem: m.keyPem, certPem: m.certPem, caPem: tls.caPem });
        this.state = { ...s, role: 'manager', store: 'etcd' };
        await this.startManager(await Manager.openEtcd(this.opts.stateDir, plane));
        writeNodeState(this.opts.stateDir, this.state);
      } catch (err) {
        saveCerts(this.opts.stateDir, tls);
        this.state = s;
        await plane.close({ destroy: true }).catch(() => undefined);
        await this.startWorker();
        throw err;
      }
      await this.startWorker();
      log.info({ nodeId: s.nodeId }, 'promoted to manager');
    });
  }

  private async forceNewCluster(s: NodeState): Promise<string> {
    if (!s.store) return s.nodeId; // the embedded store has one manager: it is its own quorum
    if (s.store !== 'etcd') throw unavailable('this manager uses an external etcd: restore that cluster\'s quorum with etcd\'s own tools');
    log.warn({ nodeId: s.nodeId }, 'forcing a new cluster: this etcd member becomes the only one');
    await this.stopLocal();
    try {
      const plane = await (await etcdPlane()).resume(this.planeOptions(s.nodeId, s.advertiseAddr, '', { kind: 'etcd' }), { forceNewCluster: true });
      await this.startManager(await Manager.openEtcd(this.opts.stateDir, plane));
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'force-new-cluster failed; resuming as before');
      if (!this.manager) await this.startManager(await this.openManager(s)).catch(() => undefined);
      await this.startWorker();
      throw err;
    }
    await this.startWorker();
    return s.nodeId;
  }

  private planeOptions(nodeId: string, ip: string, clusterId: string, mode: StoreMode): PlaneOptions {
    if (mode.kind === 'embedded') throw new Error('no etcd plane on the embedded store');
    return { stateDir: this.opts.stateDir, nodeId, ip, clusterId, mode, etcdBin: this.opts.etcdBin };
  }

  /** a manager's state after a restart: the embedded store, or the etcd member / external cluster it used */
  private async openManager(s: NodeState): Promise<Manager> {
    if (!s.store) return Manager.open(this.opts.stateDir);
    const mode: StoreMode = s.store === 'etcd' ? { kind: 'etcd' } : (this.opts.store ?? { kind: 'embedded' });
    if (mode.kind === 'embedded') throw unavailable('this manager used an external etcd: start the agent with --store etcd://host:port[,…]');
    return Manager.openEtcd(this.opts.stateDir, await (await etcdPlane()).resume(this.planeOptions(s.nodeId, s.advertiseAddr, '', mode)));
  }

  /** the request's listen address, unless it is the CLI's default and the agent was given one */
  private listenAddr(requested: string | undefined): { host: string; port: number } {
    const useAgent = !requested || (requested === CLI_DEFAULT_LISTEN && this.opts.listenAddr !== CLI_DEFAULT_LISTEN);
    return splitHostPort(useAgent ? this.opts.listenAddr : requested, 2377);
  }

  private async describe(): Promise<NodeDescription> {
    this.description = await describeNode(this.docker, this.opts.hostname);
    return this.description;
  }

  private async startManager(manager: Manager): Promise<void> {
    const s = this.state!;
    const listen = splitHostPort(s.listenAddr, 2377);
    const port = await manager.listen(this.opts.stateDir, s.nodeId, listen.host, listen.port);
    // the advertised port follows the bound one (port 0 picks a free port)
    await manager.store.update((tx) => {
      const n = tx.get('nodes', s.nodeId);
      const addr = `${s.advertiseAddr}:${port}`;
      if (n?.ManagerStatus && n.ManagerStatus.Addr !== addr) tx.update('nodes', { ...n, ManagerStatus: { ...n.ManagerStatus, Addr: addr } });
    });
    manager.start();
    this.manager = manager;
    if (manager.ha) this.watchDemotion(manager, s.nodeId);
  }

  /** an etcd manager whose node is demoted resigns, waits for its member to be removed, and goes on as a worker */
  private watchDemotion(manager: Manager, nodeId: string): void {
    let seen = false;
    const check = () => {
      if (seen || manager.store.get('nodes', nodeId)?.Spec.Role !== 'worker') return;
      seen = true;
      unwatch();
      void this.becomeWorker(manager, nodeId).catch((err) => log.error({ err: errorMessage(err) }, 'demotion to worker failed'));
    };
    const unwatch = manager.store.watch(check);
    check();
  }

  private async becomeWorker(manager: Manager, nodeId: string): Promise<void> {
    log.info({ nodeId }, 'demoted: resigning leadership and waiting for the leader to remove this etcd member');
    await manager.resign();
    const ha = manager.ha!;
    const others = () => manager.store.list('nodes', (n) => n.ID !== nodeId && !!n.ManagerStatus).map((n) => n.ManagerStatus!.Addr);
    let addrs = others();
    for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
      addrs = others();
      const peers = addrs.map((a) => splitHostPort(a, 2377).host);
      const still = ha.agentManaged ? await ha.isMember(nodeId, peers).catch(() => true) : false;
      if (!still || this.manager !== manager) break;
      await sleep(500);
    }
    if (this.manager !== manager || !this.state) return;
    await this.exclusive(async () => {
      await this.stopLocal({ destroy: true });
      rmSync(`${this.opts.stateDir}/ca`, { recursive: true, force: true });
      rmSync(`${this.opts.stateDir}/etcd-ca`, { recursive: true, force: true });
      const { store: _s, ...rest } = this.state!;
      this.state = { ...rest, role: 'worker', managers: addrs };
      writeNodeState(this.opts.stateDir, this.state);
      await this.startWorker();
      log.info({ nodeId }, 'now a worker');
    });
  }

  private async startWorker(): Promise<void> {
    const s = this.state!;
    const net = this.opts.dataPlane === false ? undefined : new NetAgent({ nodeId: s.nodeId });
    this.net = net;
    const worker = new Worker({
      docker: this.docker,
      nodeId: s.nodeId,
      hooks: net?.hooks(),
      maxParallelStarts: 12,
      report: (updates) => this.feed?.report(updates),
      serviceName: (t) => t.ServiceAnnotations?.Name ?? t.ServiceID,
      serviceLabels: (t) => t.ServiceAnnotations?.Labels,
    });
    await worker.start();
    this.worker = worker;
    const apply = (tasks: Task[]) => worker.setAssignments(tasks);
    const manager = this.manager;
    if (manager && !manager.ha) {
      await manager.dispatcher.register(s.nodeId, this.description ?? await this.describe(), s.advertiseAddr);
      const unsubscribe = manager.dispatcher.subscribe(s.nodeId, apply);
      const unsubscribeMap = net ? manager.netmaps.subscribe(s.nodeId, (m) => net.setNetMap(m)) : () => undefined;
      this.feed = { report: (u) => void manager.dispatcher.updateStatus(s.nodeId, u), stop: () => { unsubscribe(); unsubscribeMap(); } };
      return;
    }
    const tls = loadCerts(this.opts.stateDir);
    if (!tls) throw new Error(`node certificate missing under ${this.opts.stateDir}/certs`);
    // a manager's own worker talks to the leader like any other (the leader first when known)
    const managers = manager
      ? [...new Set([manager.leaderAddr(), ...manager.store.list('nodes', (n) => !!n.ManagerStatus).map((n) => n.ManagerStatus!.Addr)].filter((a): a is string => !!a))]
      : s.managers ?? [];
    const session = new ManagerSession({
      managers, tls, addr: s.advertiseAddr, docker: this.docker,
      describe: () => this.description ? Promise.resolve(this.description) : this.describe(),
      onAssignments: apply,
      onNetMap: net && ((m) => net.setNetMap(m)),
      onPromote: (m) => void this.promote(m).catch((err) => log.error({ err: errorMessage(err) }, 'promotion failed')),
      onManagers: (addrs) => {
        if (this.state && addrs.join() !== (this.state.managers ?? []).join()) writeNodeState(this.opts.stateDir, (this.state = { ...this.state, managers: addrs }));
      },
    });
    session.start();
    this.feed = { report: (u) => session.report(u), stop: () => session.stop() };
  }

  private async stopLocal(opts: { destroy?: boolean } = {}): Promise<void> {
    this.feed?.stop();
    this.feed = undefined;
    await this.worker?.stop();
    this.worker = undefined;
    await this.net?.close({ teardown: opts.destroy });
    this.net = undefined;
    const manager = this.manager;
    this.manager = undefined;
    await manager?.stop(opts);
  }

  /** on leave, the node's task containers go, as Swarm removes them */
  private async removeTaskContainers(nodeId: string): Promise<void> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.node.id=${nodeId}`] } });
    await Promise.all(list.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw unavailable('another swarm operation is in progress on this node');
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
