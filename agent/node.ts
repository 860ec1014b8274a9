// Owns this node's swarm membership and lifecycle: init, join, resume after a
// restart, leave. It runs the manager (on managers) and the worker (always:
// fed in-process on a manager, through a session with the managers on a
// worker), and is the SwarmBackend the Docker API server talks to.
import { rmSync } from 'node:fs';
import type Docker from 'dockerode';
import { ALREADY_IN_SWARM, NOT_A_MANAGER, NOT_IN_SWARM, type ControlPlane, type LocalSwarmInfo, type SwarmBackend, type SwarmInitRequest, type SwarmJoinRequest } from './api/backend.js';
import { invalid, unavailable } from './common/errors.js';
import { newId } from './common/ids.js';
import { logger } from './common/log.js';
import type { NodeDescription, Task, TaskStatus } from './common/types.js';
import { describeNode, dockerClient } from './docker.js';
import { resolveAdvertise, splitHostPort } from './addr.js';
import { Manager } from './manager/manager.js';
import { readNodeState, writeNodeState, type NodeState } from './node-state.js';
import { Worker } from './worker/worker.js';
import { joinSwarm, loadCerts, saveCerts } from './worker/join.js';
import { ManagerSession } from './worker/session.js';
import { NetAgent } from '../netd/agent.js';

const log = logger('node');

export interface NodeOptions {
  stateDir: string;
  hostname: string;
  dockerHost: string;
  listenAddr: string;        // default 0.0.0.0:2377
  advertiseAddr?: string;
  /** run netd and the mesh (overlays, DNS, VIPs, published ports); off for control-plane-only agents */
  dataPlane?: boolean;
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
    if (s.role === 'manager') await this.startManager(await Manager.open(this.opts.stateDir));
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
  get managerPlane(): Manager | undefined {
    return this.manager;
  }

  control(): ControlPlane {
    if (!this.manager) throw unavailable(this.state ? NOT_A_MANAGER : NOT_IN_SWARM);
    return this.manager;
  }

  async init(req: SwarmInitRequest): Promise<string> {
    return this.exclusive(async () => {
      if (this.state) throw unavailable(ALREADY_IN_SWARM);
      const listen = this.listenAddr(req.ListenAddr);
      const adv = resolveAdvertise(req.AdvertiseAddr || this.opts.advertiseAddr, listen.host, listen.port);
      if (req.Availability && !['active', 'pause', 'drain'].includes(req.Availability)) throw invalid(`invalid availability: ${req.Availability}`);
      const description = await this.describe();
      const nodeId = newId();
      rmSync(this.opts.stateDir, { recursive: true, force: true });
      const manager = await Manager.open(this.opts.stateDir, true);
      try {
        await manager.bootstrap({
          clusterId: newId(), nodeId, description, addr: adv.host, managerAddr: `${adv.host}:${adv.port}`, spec: req.Spec,
          availability: (req.Availability || undefined) as 'active' | undefined,
          defaultAddrPool: req.DefaultAddrPool, subnetSize: req.SubnetSize, dataPathPort: req.DataPathPort,
        });
        this.state = { nodeId, role: 'manager', advertiseAddr: adv.host, listenAddr: `${listen.host}:${listen.port}` };
        await this.startManager(manager);
      } catch (err) {
        this.state = undefined;
        await manager.stop();
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
      });
      rmSync(this.opts.stateDir, { recursive: true, force: true });
      saveCerts(this.opts.stateDir, { keyPem, certPem: res.certPem, caPem: res.caPem });
      const managers = [...new Set([remote, ...res.managers.map((m) => m.addr)])];
      this.state = { nodeId: res.nodeId, role: res.role, advertiseAddr: adv.host, listenAddr: `${listen.host}:${listen.port}`, managers };
      writeNodeState(this.opts.stateDir, this.state);
      await this.startWorker();
      log.info({ nodeId: res.nodeId, manager: remote }, 'joined swarm');
    });
  }

  async leave(force: boolean): Promise<void> {
    return this.exclusive(async () => {
      if (!this.state) throw unavailable('This node is not part of a swarm');
      if (this.state.role === 'manager' && !force) {
        throw unavailable('You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.');
      }
      const nodeId = this.state.nodeId;
      await this.stopLocal();
      await this.removeTaskContainers(nodeId);
      rmSync(this.opts.stateDir, { recursive: true, force: true });
      this.state = undefined;
      log.info({ nodeId }, 'left the swarm');
    });
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
    if (manager) {
      await manager.dispatcher.register(s.nodeId, this.description ?? await this.describe(), s.advertiseAddr);
      const unsubscribe = manager.dispatcher.subscribe(s.nodeId, apply);
      const unsubscribeMap = net ? manager.netmaps.subscribe(s.nodeId, (m) => net.setNetMap(m)) : () => undefined;
      this.feed = { report: (u) => void manager.dispatcher.updateStatus(s.nodeId, u), stop: () => { unsubscribe(); unsubscribeMap(); } };
      return;
    }
    const tls = loadCerts(this.opts.stateDir);
    if (!tls) throw new Error(`node certificate missing under ${this.opts.stateDir}/certs`);
    const session = new ManagerSession({
      managers: s.managers ?? [], tls, addr: s.advertiseAddr,
      describe: () => this.description ? Promise.resolve(this.description) : this.describe(),
      onAssignments: apply,
      onNetMap: net && ((m) => net.setNetMap(m)),
      onManagers: (addrs) => {
        if (this.state && addrs.join() !== (this.state.managers ?? []).join()) writeNodeState(this.opts.stateDir, (this.state = { ...this.state, managers: addrs }));
      },
    });
    session.start();
    this.feed = { report: (u) => session.report(u), stop: () => session.stop() };
  }

  private async stopLocal(): Promise<void> {
    this.feed?.stop();
    this.feed = undefined;
    await this.worker?.stop();
    this.worker = undefined;
    await this.net?.close();
    this.net = undefined;
    await this.manager?.stop();
    this.manager = undefined;
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
