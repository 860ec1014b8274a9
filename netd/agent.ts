// Owns a node's data plane, driven by the network map from the managers:
// overlays (bridge + VXLAN) with static peers, container attachment, the
// service DNS server on every overlay gateway, VIP rules inside each local
// container, and the ingress routing mesh. It reconciles the latest map,
// one pass at a time; a failed pass is retried, never fatal.
import type Dockerode from 'dockerode';
import type { NetMap } from '../agent/common/netmap.js';
import type { Task } from '../agent/common/types.js';
import { logger } from '../agent/common/log.js';
import type { WorkerHooks } from '../agent/worker/worker.js';
import { DnsServer, ServiceRecords } from './dns/index.js';
import { RemoteOverlayDriver } from './overlay/remote.js';
import { applyInNamespace, vipScript } from './vip/rules.js';
import { Mesh, meshTable } from '../lb/index.js';
import { peersOf, recordsOf, vipRulesFor } from './view.js';

const log = logger('netd');
const RETRY_MS = 1000;

interface LocalContainer { pid: number; networks: string[]; script?: string }

export interface NetAgentOptions {
  nodeId: string;
  /** DNS port on each gateway (53; tests may choose another) */
  dnsPort?: number;
  /** interface address the mesh listens on (default all) */
  meshBindHost?: string;
}

export class NetAgent {
  private driver?: RemoteOverlayDriver;
  private respawning?: Promise<RemoteOverlayDriver>;
  private records = new ServiceRecords({ ownSingleLabels: true });
  private dns = new DnsServer({ records: this.records });
  private dnsOn = new Set<string>();
  private mesh?: Mesh;
  private map?: NetMap;
  private local = new Map<string, LocalContainer>(); // by task id
  private running = false;
  private dirty = false;
  private retry?: NodeJS.Timeout;
  private closed = false;
  private ready: Promise<void>;

  constructor(private opts: NetAgentOptions) {
    this.ready = this.init();
  }

  private async init(): Promise<void> {
    this.driver = await RemoteOverlayDriver.spawn();
    this.mesh = new Mesh({ bindHost: this.opts.meshBindHost, sourceAddr: () => this.ingressAddr() });
  }

  /** the overlay driver process, started again if it died (it is stateless: the kernel holds the state) */
  private async drv(): Promise<RemoteOverlayDriver> {
    await this.ready;
    if (this.driver?.alive) return this.driver;
    this.respawning ??= RemoteOverlayDriver.spawn().then((d) => {
      log.warn('overlay driver process restarted');
      this.driver = d;
      return d;
    }).finally(() => { this.respawning = undefined; });
    return this.respawning;
  }

  /** one-line health for `node inspect` (Status.Message) */
  statusMessage(): string | undefined {
    const bad = this.mesh?.status().filter((s) => s.state === 'failed' || s.state === 'conflict') ?? [];
    return bad.length ? bad.map((s) => `port ${s.publishedPort}: ${s.error ?? s.state}`).join('; ') : undefined;
  }

  private ingressAddr(): string | undefined {
    return this.map?.networks.find((n) => n.ingress)?.nodeAddr.split('/')[0];
  }

  setNetMap(map: NetMap): void {
    this.map = map;
    this.kick();
  }

  hooks(): WorkerHooks {
    return {
      beforeCreate: (task, options) => {
        const first = this.networkOf(task, false);
        if (first) options.HostConfig = { ...options.HostConfig, Dns: [first.gateway] };
      },
      afterStart: async (task, container) => {
        await this.ready;
        const atts = task.NetworksAttachments ?? [];
        let i = 0;
        for (const a of atts) {
          const net = a.Network;
          const vni = Number(net.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list']);
          const c = net.IPAMOptions?.Configs?.[0];
          if (!vni || !c) throw new Error(`network ${net.Spec.Name} is not allocated`);
          await this.ensureLocalNetwork(a.Network.ID);
          const [address, prefix] = a.Addresses[0].split('/');
          await (await this.drv()).attach({ pid: container.pid, vni, address, prefixLen: Number(prefix), gateway: c.Gateway, ifname: `eth${i}`, defaultRoute: i === 0 });
          i++;
        }
        this.local.set(task.ID, { pid: container.pid, networks: atts.map((a) => a.Network.ID) });
        await this.applyVips(task.ID).catch((err) => log.warn({ err, task: task.ID }, 'VIP rules not applied yet'));
      },
      beforeRemove: async (task) => {
        this.local.delete(task.ID);
        await this.ready;
        for (const a of task.NetworksAttachments ?? []) {
          const vni = Number(a.Network.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list']);
          if (vni) await (await this.drv()).detach({ vni, address: a.Addresses[0].split('/')[0] }).catch(() => undefined);
        }
      },
    };
  }

  private networkOf(task: Task, ingress: boolean) {
    const a = (task.NetworksAttachments ?? []).find((x) => !!x.Network.Spec.Ingress === ingress);
    return a && a.Network.IPAMOptions?.Configs?.[0] ? { gateway: a.Network.IPAMOptions.Configs[0].Gateway } : undefined;
  }

  /** a container may start before the map lists its network: set the network up from the map or wait a pass */
  private async ensureLocalNetwork(networkId: string): Promise<void> {
    for (let i = 0; i < 50 && !this.map?.networks.some((n) => n.id === networkId); i++) await new Promise((r) => setTimeout(r, 100));
    const n = this.map?.networks.find((x) => x.id === networkId);
    if (!n) throw new Error(`network ${networkId} is not in this node's network map yet`);
    await (await this.drv()).ensureNetwork({ id: n.id, vni: n.vni, subnet: n.subnet, gateway: n.gateway, nodeAddr: n.nodeAddr.split('/')[0], underlayAddr: this.map!.nodes[this.opts.nodeId]?.addr ?? '' });
  }

  private kick(): void {
    this.dirty = true;
    if (!this.running && !this.closed) void this.loop();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      await this.ready;
      while (this.dirty && !this.closed) {
        this.dirty = false;
        try {
          await this.reconcile(this.map!);
        } catch (err) {
          log.warn({ err }, 'network reconcile failed; retrying');
          clearTimeout(this.retry);
          this.retry = setTimeout(() => this.kick(), RETRY_MS);
        }
      }
    } catch (err) {
      log.error({ err }, 'data plane could not start');
    } finally {
      this.running = false;
    }
  }

  /**
   * one pass over the map; every step is tried even when an earlier one
   * fails (a broken network must not keep DNS or the mesh of the others
   * down), and the pass then fails as a whole so it is retried
   */
  private async reconcile(map: NetMap): Promise<void> {
    const self = this.opts.nodeId;
    const underlay = map.nodes[self]?.addr ?? '';
    const errors: unknown[] = [];
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try { await fn(); } catch (err) { errors.push(err); log.warn({ err, what }, 'data plane step failed'); }
    };
    // overlays to keep come from the newest map: a container may have set up its
    // network (afterStart waits for a map that lists it) while this pass ran on an older one
    const want = () => new Set((this.map ?? map).networks.map((n) => n.vni));
    for (const n of map.networks) {
      await step(`overlay ${n.name}`, async () => {
        await (await this.drv()).ensureNetwork({ id: n.id, vni: n.vni, subnet: n.subnet, gateway: n.gateway, nodeAddr: n.nodeAddr.split('/')[0], underlayAddr: underlay });
        await (await this.drv()).setPeers(n.vni, peersOf(map, n.id, self));
      });
    }
    await step('stale overlays', async () => {
      for (const have of await (await this.drv()).networks()) if (!want().has(have.vni)) await (await this.drv()).removeNetwork(have.vni);
    });

    // DNS on every non-ingress gateway
    const gateways = new Set<string>();
    for (const n of map.networks) {
      if (n.ingress) continue;
      this.records.setNetworkRecords(n.id, recordsOf(map, n.id));
      gateways.add(n.gateway);
    }
    for (const id of this.records.networkIds()) if (!map.networks.some((n) => n.id === id && !n.ingress)) this.records.removeNetwork(id);
    for (const g of [...this.dnsOn]) {
      if (!gateways.has(g)) await step(`dns off ${g}`, async () => { await this.dns.unlisten(g); this.dnsOn.delete(g); });
    }
    for (const g of gateways) {
      if (!this.dnsOn.has(g)) await step(`dns on ${g}`, async () => { await this.dns.listen(g, this.opts.dnsPort ?? 53); this.dnsOn.add(g); });
    }

    for (const taskId of this.local.keys()) await this.applyVips(taskId).catch((err) => log.warn({ err, taskId }, 'VIP update failed'));

    const ingress = map.networks.find((n) => n.ingress);
    await step('mesh', () => this.mesh!.setServices(ingress ? meshTable(map.services, map.tasks, { ingressNetworkId: ingress.id, nodeId: self }) : []));
    if (errors.length) throw errors[0];
  }

  private async applyVips(taskId: string): Promise<void> {
    const c = this.local.get(taskId);
    if (!c || !this.map) return;
    const script = vipScript(vipRulesFor(this.map, c.networks));
    if (script === c.script) return;
    await applyInNamespace(c.pid, script);
    c.script = script;
  }

  dnsStats() { return this.dns.stats(); }
  meshStats() { return this.mesh?.stats() ?? []; }

  /**
   * stops serving; `teardown` (the node leaves the swarm) also removes every
   * overlay, veth and firewall rule this node programmed
   */
  async close(opts: { teardown?: boolean } = {}): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.ready.catch(() => undefined);
    await this.mesh?.close();
    await this.dns.close();
    if (opts.teardown && this.driver) {
      const d = await this.drv().catch(() => undefined);
      for (const n of (await d?.networks().catch(() => [])) ?? []) await d!.removeNetwork(n.vni).catch((err) => log.warn({ err, vni: n.vni }, 'overlay teardown failed'));
    }
    await this.driver?.close();
  }
}
