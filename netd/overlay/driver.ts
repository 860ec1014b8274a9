// Owns the overlay data path of one host, acting in the network namespace of
// the calling process: per network a bridge shb<VNI> (gateway + this host's own
// overlay address) and a VXLAN device shv<VNI> (UDP 4789, learning off, ARP
// proxy, MTU 1450); veths into task containers; static FDB + neighbour entries
// for remote endpoints; forwarding/NAT rules (firewall.ts). Links, addresses,
// FDB and neighbours go through rtnetlink (rtnl.ts); a container's own
// namespace is configured from inside with nsenter + ip, where a netlink socket
// of this process cannot act. Every operation is idempotent and reconciles
// against what the kernel has, so it is safe after an agent restart.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { invalid, notFound } from '../../agent/common/errors.js';
import { macFromIPv4 } from '../ipam/addr.js';
import { sbin } from './bin.js';
import { syncFirewall, type FirewallNetwork } from './firewall.js';
import { BRIDGE_RE, OVERLAY_MTU, bridgeName, hostVethAlias, hostVethName, vxlanName } from './names.js';
import { Rtnl, type FdbEntry, type LinkInfo, type NeighEntry } from './rtnl.js';

export interface OverlayNetwork {
  id: string;
  vni: number;
  /** "10.0.1.0/24" */
  subnet: string;
  gateway: string;
  /** this host's own overlay address (source of host-originated overlay traffic) */
  nodeAddr: string;
  /** local VTEP address on the underlay */
  underlayAddr: string;
}
export interface AttachOptions {
  /** pid of the container's init process (its network namespace is /proc/PID/ns/net) */
  pid: number;
  vni: number;
  address: string;
  prefixLen: number;
  gateway: string;
  /** interface name inside the container, default eth0 */
  ifname?: string;
  /** install the default route via gateway, default true */
  defaultRoute?: boolean;
}
export interface Peer { addr: string; mac: string; host: string }
export interface PeerDiff { added: number; removed: number; unchanged: number }

export class OverlayDriver {
  private readonly nl = new Rtnl();
  private chain: Promise<unknown> = Promise.resolve();

  /** Serializes operations: each reads kernel state, then changes it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  ensureNetwork(n: OverlayNetwork): Promise<void> {
    return this.serial(async () => {
      const [subnetAddr, prefixLen] = parseCidr(n.subnet);
      for (const a of [n.gateway, n.nodeAddr]) {
        if (!ipaddr.IPv4.parse(a).match(ipaddr.IPv4.parse(subnetAddr), prefixLen)) throw invalid(`${a} is not in ${n.subnet}`);
      }
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
      const brName = bridgeName(n.vni);
      const mac = macFromIPv4(n.nodeAddr);
      let br = await this.nl.link(brName);
      if (!br) {
        await this.nl.createBridge(brName, { mac, mtu: OVERLAY_MTU });
        br = await this.mustLink(brName);
      } else if (br.mac !== mac) {
        await this.nl.setLink(br.index, { mac });
      }
      // nodeAddr first, so it is the primary address and the source the kernel picks
      const want = [n.nodeAddr, n.gateway];
      const have = await this.nl.addresses(br.index);
      const ok = have.length === 2 && !have.find((a) => a.address === n.nodeAddr)?.secondary &&
        want.every((w) => have.some((a) => a.address === w && a.prefixLen === prefixLen));
      if (!ok) {
        for (const a of have) await this.nl.delAddress(br.index, a.address, a.prefixLen);
        for (const w of want) await this.nl.addAddress(br.index, w, prefixLen);
      }
      const vxName = vxlanName(n.vni);
      let vx = await this.nl.link(vxName);
      if (vx && (vx.kind !== 'vxlan' || vx.vxlan?.id !== n.vni || vx.vxlan?.local !== n.underlayAddr)) {
        await this.nl.deleteLink(vx.index);
        vx = undefined;
      }
      if (!vx) {
        await this.nl.createVxlan(vxName, { vni: n.vni, local: n.underlayAddr, master: br.index, mtu: OVERLAY_MTU });
        vx = await this.mustLink(vxName);
      }
      if (vx.master !== br.index) await this.nl.setLink(vx.index, { master: br.index });
      if (!vx.up) await this.nl.setLink(vx.index, { up: true });
      if (!br.up) await this.nl.setLink(br.index, { up: true });
      await this.syncFirewall();
    });
  }

  /** Removes the network's bridge, VXLAN device, remaining container veths and rules. */
  removeNetwork(vni: number): Promise<void> {
    return this.serial(async () => {
      const links = await this.nl.links();
      const br = links.find((l) => l.name === bridgeName(vni));
      for (const l of links) {
        if ((br && l.master === br.index && l.kind === 'veth') || l.name === vxlanName(vni)) await this.nl.deleteLink(l.index);
      }
      if (br) await this.nl.deleteLink(br.index);
      await this.syncFirewall();
    });
  }

  /** Networks present in the kernel (bridges shb<VNI>). */
  networks(): Promise<{ vni: number; bridge: string; subnet?: string }[]> {
    return this.serial(() => this.listNetworks());
  }

  private async listNetworks(): Promise<{ vni: number; bridge: string; subnet?: string }[]> {
    const links = await this.nl.links();
    const out: { vni: number; bridge: string; subnet?: string }[] = [];
    for (const l of links) {
      const m = BRIDGE_RE.exec(l.name);
      if (!m) continue;
      const addrs = await this.nl.addresses(l.index);
      const a = addrs[0];
      const subnet = a ? `${ipaddr.IPv4.networkAddressFromCIDR(`${a.address}/${a.prefixLen}`).toString()}/${a.prefixLen}` : undefined;
      out.push({ vni: Number(m[1]), bridge: l.name, ...(subnet ? { subnet } : {}) });
    }
    return out;
  }

  attach(o: AttachOptions): Promise<{ mac: string; hostIfname: string }> {
    return this.serial(async () => {
      const ifname = o.ifname ?? 'eth0';
      const mac = macFromIPv4(o.address);
      const br = await this.nl.link(bridgeName(o.vni));
      if (!br) throw notFound(`overlay network with VNI ${o.vni} is not set up on this host`);
      const name = hostVethName(o.vni, o.address);
      const existing = await this.nl.link(name);
      if (existing) {
        // already attached (e.g. agent restart): keep it if the container side is intact
        if (existing.master === br.index && (await containerHas(o.pid, ifname, o.address, o.prefixLen))) {
          if (!existing.up) await this.nl.setLink(existing.index, { up: true });
          return { mac, hostIfname: name };
        }
        await this.nl.deleteLink(existing.index);
      }
      await this.nl.createVeth({
        name, alias: hostVethAlias(o.vni, o.address), master: br.index, mtu: OVERLAY_MTU,
        peerName: ifname, peerPid: o.pid, peerMac: mac,
      });
      const host = await this.mustLink(name);
      await this.nl.setLink(host.index, { up: true });
      const cmds = [
        'link set dev lo up',
        `addr replace ${o.address}/${o.prefixLen} dev ${ifname}`,
        `link set dev ${ifname} up`,
        ...(o.defaultRoute === false ? [] : [`route replace default via ${o.gateway} dev ${ifname}`]),
      ];
      try {
        await nsenterIp(o.pid, cmds);
      } catch (err) {
        await this.nl.deleteLink(host.index);
        throw err;
      }
      return { mac, hostIfname: name };
    });
  }

  /** Removes the container's veth (both ends go with the host end); a missing one is fine. */
  detach(o: { vni: number; address: string }): Promise<void> {
    return this.serial(async () => {
      const l = await this.nl.link(hostVethName(o.vni, o.address));
      if (l) await this.nl.deleteLink(l.index);
    });
  }

  /**
   * Makes the static FDB and neighbour entries of the network's VXLAN device
   * equal to `peers` (remote endpoints), changing only the difference.
   */
  setPeers(vni: number, peers: Peer[]): Promise<PeerDiff> {
    return this.serial(async () => {
      const vx = await this.nl.link(vxlanName(vni));
      if (!vx) throw notFound(`overlay network with VNI ${vni} is not set up on this host`);
      const wantFdb = new Map<string, FdbEntry>();
      const wantNeigh = new Map<string, NeighEntry>();
      for (const p of peers) {
        const mac = p.mac.toLowerCase();
        wantFdb.set(`${mac}>${p.host}`, { mac, dst: p.host });
        wantNeigh.set(p.addr, { address: p.addr, mac });
      }
      const fdb = await this.nl.fdb(vx.index);
      const neigh = await this.nl.neighbours(vx.index);
      const haveFdb = new Set(fdb.map((e) => `${e.mac}>${e.dst}`));
      const haveNeigh = new Map(neigh.map((e) => [e.address, e.mac]));
      const diff: PeerDiff = { added: 0, removed: 0, unchanged: 0 };
      const removals = [
        ...fdb.filter((e) => !wantFdb.has(`${e.mac}>${e.dst}`)).map((e) => this.nl.fdbDel(vx.index, e)),
        ...neigh.filter((e) => !wantNeigh.has(e.address)).map((e) => this.nl.neighDel(vx.index, e.address)),
      ];
      const additions = [
        ...[...wantFdb].filter(([k]) => !haveFdb.has(k)).map(([, e]) => this.nl.fdbAdd(vx.index, e)),
        ...[...wantNeigh.values()].filter((e) => haveNeigh.get(e.address) !== e.mac).map((e) => this.nl.neighReplace(vx.index, e)),
      ];
      diff.removed = removals.length;
      diff.added = additions.length;
      diff.unchanged = wantFdb.size + wantNeigh.size - additions.length;
      await this.nl.all(removals); // first, so a MAC that moved to another host loses its old entry
      await this.nl.all(additions);
      // this host may have tried a new peer before it was programmed: its own ARP
      // entry on the bridge then waits for the next retry (1 s); resolve it now
      if (additions.length && vx.master) {
        const pending = new Set(await this.nl.unresolved(vx.master));
        await this.nl.all([...wantNeigh.values()].filter((e) => pending.has(e.address)).map((e) => this.nl.neighResolve(vx.master!, e)));
      }
      return diff;
    });
  }

  /** Programmed peers of a network, as the kernel has them. */
  peers(vni: number): Promise<{ fdb: FdbEntry[]; neighbours: NeighEntry[] }> {
    return this.serial(async () => {
      const vx = await this.nl.link(vxlanName(vni));
      if (!vx) return { fdb: [], neighbours: [] };
      const fdb = await this.nl.fdb(vx.index);
      return { fdb, neighbours: await this.nl.neighbours(vx.index) };
    });
  }

  async close(): Promise<void> {
    await this.chain;
    this.nl.close();
  }

  private async syncFirewall(): Promise<void> {
    const nets: FirewallNetwork[] = [];
    for (const n of await this.listNetworks()) if (n.subnet) nets.push({ bridge: n.bridge, subnet: n.subnet });
    await syncFirewall(nets);
  }

  private async mustLink(name: string): Promise<LinkInfo> {
    const l = await this.nl.link(name);
    if (!l) throw new Error(`link ${name} vanished right after it was created`);
    return l;
  }
}

function parseCidr(cidr: string): [string, number] {
  try {
    const [a, len] = ipaddr.IPv4.parseCIDR(cidr);
    return [a.toString(), len];
  } catch {
    throw invalid(`invalid subnet ${JSON.stringify(cidr)}`);
  }
}

function nsenterIp(pid: number, cmds: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(sbin('nsenter'), ['-t', String(pid), '-n', sbin('ip'), '-batch', '-'], { timeout: 15_000 }, (err, out, stderr) =>
      err ? reject(new Error(`configuring the network of pid ${pid}: ${stderr.trim() || err.message}`)) : resolve(out));
    child.stdin!.on('error', () => undefined); // nsenter failed early (process gone): the exit reports it
    child.stdin!.end(cmds.join('\n') + '\n');
  });
}

function containerHas(pid: number, ifname: string, address: string, prefixLen: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(sbin('nsenter'), ['-t', String(pid), '-n', sbin('ip'), '-o', '-4', 'addr', 'show', 'dev', ifname, 'up'], { timeout: 15_000 },
      (err, out) => resolve(!err && out.includes(` ${address}/${prefixLen} `)));
  });
}
