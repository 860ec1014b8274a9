// Owns this node's swarm membership and lifecycle: init, resume after a
// restart, leave; it runs the manager (on managers) and the local worker, and
// is the SwarmBackend the Docker API server talks to.
import { rmSync } from 'node:fs';
import type Docker from 'dockerode';
import { ALREADY_IN_SWARM, NOT_IN_SWARM, type ControlPlane, type LocalSwarmInfo, type SwarmBackend, type SwarmInitRequest, type SwarmJoinRequest } from './api/backend.js';
import { invalid, unavailable, ShoalError } from './common/errors.js';
import { newId } from './common/ids.js';
import { logger } from './common/log.js';
import { describeNode, dockerClient } from './docker.js';
import { resolveAdvertise, splitHostPort } from './addr.js';
import { Manager } from './manager/manager.js';
import { readNodeState, writeNodeState, type NodeState } from './node-state.js';
import { Worker } from './worker/worker.js';

const log = logger('node');

export interface NodeOptions {
  stateDir: string;
  hostname: string;
  dockerHost: string;
  listenAddr: string;        // default 0.0.0.0:2377
  advertiseAddr?: string;
}

export class SwarmNode implements SwarmBackend {
  readonly docker: Docker;
  private state?: NodeState;
  private manager?: Manager;
  private worker?: Worker;
  private unsubscribe?: () => void;
  private busy = false;

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
    if (s.role === 'manager') {
      this.manager = await Manager.open(this.opts.stateDir);
      this.manager.start();
    }
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
      ? this.manager.store.list('nodes', (n) => n.Spec.Role === 'manager' && !!n.ManagerStatus).map((n) => ({ NodeID: n.ID, Addr: n.ManagerStatus!.Addr }))
      : [];
    return { NodeID: s.nodeId, NodeAddr: s.advertiseAddr, LocalNodeState: 'active', ControlAvailable: !!this.manager, Error: '', RemoteManagers: managers };
  }

  control(): ControlPlane {
    if (!this.manager) throw unavailable(NOT_IN_SWARM);
    return this.manager;
  }

  async init(req: SwarmInitRequest): Promise<string> {
    return this.exclusive(async () => {
      if (this.state) throw unavailable(ALREADY_IN_SWARM);
      const listen = splitHostPort(req.ListenAddr || this.opts.listenAddr, 2377);
      const adv = resolveAdvertise(req.AdvertiseAddr || this.opts.advertiseAddr, listen.host, listen.port);
      if (req.Availability && !['active', 'pause', 'drain'].includes(req.Availability)) throw invalid(`invalid availability: ${req.Availability}`);
      const description = await describeNode(this.docker, this.opts.hostname);
      const nodeId = newId();
      rmSync(this.opts.stateDir + '/store', { recursive: true, force: true });
      const manager = await Manager.open(this.opts.stateDir, true);
      try {
        await manager.bootstrap({
          nodeId, description, addr: adv.host, managerAddr: `${adv.host}:${adv.port}`, spec: req.Spec,
          availability: (req.Availability || undefined) as 'active' | undefined,
          defaultAddrPool: req.DefaultAddrPool, subnetSize: req.SubnetSize, dataPathPort: req.DataPathPort,
        });
      } catch (err) {
        await manager.stop();
        throw err;
      }
      this.state = { nodeId, role: 'manager', advertiseAddr: adv.host, listenAddr: `${listen.host}:${listen.port}` };
      writeNodeState(this.opts.stateDir, this.state);
      this.manager = manager;
      manager.start();
      await this.startWorker();
      log.info({ nodeId }, 'swarm initialized');
      return nodeId;
    });
  }

  async join(_req: SwarmJoinRequest): Promise<void> {
    if (this.state) throw unavailable(ALREADY_IN_SWARM);
    throw new ShoalError('unavailable', 'joining another node is not supported by this build yet');
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

  private async startWorker(): Promise<void> {
    const s = this.state!;
    const manager = this.manager;
    if (!manager) return; // a worker's session with a remote manager comes with multi-host support
    const worker = new Worker({
      docker: this.docker,
      nodeId: s.nodeId,
      report: (updates) => void manager.dispatcher.updateStatus(s.nodeId, updates),
      serviceName: (t) => t.ServiceAnnotations?.Name ?? t.ServiceID,
      serviceLabels: (t) => t.ServiceAnnotations?.Labels,
    });
    await worker.start();
    const description = await describeNode(this.docker, this.opts.hostname);
    await manager.dispatcher.register(s.nodeId, description, s.advertiseAddr);
    this.worker = worker;
    this.unsubscribe = manager.dispatcher.subscribe(s.nodeId, (tasks) => worker.setAssignments(tasks));
  }

  private async stopLocal(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.worker?.stop();
    this.worker = undefined;
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
