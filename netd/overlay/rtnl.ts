// Owns the rtnetlink session of the overlay driver: one npm `netlink` socket in
// the namespace of this process, with a large receive buffer and a cap on
// requests in flight (an overflowing socket aborts the process, see
// ENVIRONMENT.md), plus typed helpers for links, addresses, FDB and neighbours.
import netlink from 'netlink';

const { createRtNetlink, ifla, rt, AttrStream, FlagsNew } = netlink;
type Socket = ReturnType<typeof createRtNetlink>;

const AF_INET = 2;
const AF_BRIDGE = 7;
const MAX_IN_FLIGHT = Number(process.env.SHOAL_NETLINK_IN_FLIGHT ?? 64);

export interface LinkInfo {
  index: number;
  name: string;
  kind?: string;
  master?: number;
  mac?: string;
  mtu?: number;
  up: boolean;
  alias?: string;
  /** VXLAN attributes when kind is vxlan */
  vxlan?: { id?: number; local?: string };
}
export interface AddrInfo { index: number; address: string; prefixLen: number; secondary: boolean }
export interface FdbEntry { mac: string; dst: string }
export interface NeighEntry { address: string; mac: string }

/** nlattr: 4-byte header (length, type) + payload, padded to 4 bytes. */
export function nlattr(type: number, data: Buffer): Buffer {
  const len = 4 + data.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

function materialize(sd: Parameters<InstanceType<typeof AttrStream>['emit']>[0]): Buffer {
  const s = new AttrStream();
  s.emit(sd);
  return Buffer.concat(s.bufs);
}

function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    if (len < 4) break;
    out.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

export const macToBuf = (mac: string) => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
export const bufToMac = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
export const ipToBuf = (ip: string) => Buffer.from(ip.split('.').map(Number));
export const bufToIp = (b: Buffer) => [...b].join('.');

/** "Request rejected: EEXIST" -> true for code EEXIST */
export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && err.message.endsWith(code);
}

export class Rtnl {
  private readonly sock: Socket = createRtNetlink({ recvBufferSize: 8 << 20, sendBufferSize: 1 << 20 });
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  /** dumps run one at a time: two multipart replies in flight on one socket confuse the library */
  private dumpChain: Promise<unknown> = Promise.resolve();

  close(): void {
    this.sock.socket.close();
  }

  /** Runs one request under the in-flight cap. */
  private async limit<T>(fn: (s: Socket) => Promise<T>): Promise<T> {
    if (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.waiting.push(r));
    this.inFlight++;
    try {
      return await fn(this.sock);
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  /** Runs a dump request, after any earlier dump has finished. */
  private dump<T>(fn: (s: Socket) => Promise<T>): Promise<T> {
    const run = () => this.limit(fn);
    const next = this.dumpChain.then(run, run);
    this.dumpChain = next.catch(() => undefined);
    return next;
  }

  /** Runs many requests, at most MAX_IN_FLIGHT at a time; rejects with the first error after all settle. */
  async all(jobs: ((s: Socket) => Promise<unknown>)[]): Promise<void> {
    const results = await Promise.allSettled(jobs.map((j) => this.limit(j)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async links(): Promise<LinkInfo[]> {
    const msgs = await this.dump((s) => s.getLinks());
    return msgs.map((m) => {
      const info: LinkInfo = {
        index: m.data.index!,
        name: m.attrs.ifname ?? '',
        up: !!m.data.flags?.up,
        ...(m.attrs.master ? { master: m.attrs.master } : {}),
        ...(m.attrs.address ? { mac: bufToMac(m.attrs.address) } : {}),
        ...(m.attrs.mtu ? { mtu: m.attrs.mtu } : {}),
        ...(m.attrs.ifalias ? { alias: m.attrs.ifalias } : {}),
      };
      if (m.attrs.linkinfo) {
        const li = parseAttrs(m.attrs.linkinfo);
        const kind = li.get(1);
        if (kind) info.kind = kind.toString().replace(/\0+$/, '');
        const data = li.get(2);
        if (info.kind === 'vxlan' && data) {
          const v = ifla.parseVxlan(data);
          info.vxlan = { id: v.id, ...(v.local ? { local: bufToIp(v.local) } : {}) };
        }
      }
      return info;
    });
  }

  async link(name: string): Promise<LinkInfo | undefined> {
    return (await this.links()).find((l) => l.name === name);
  }

  async createBridge(name: string, opts: { mac: string; mtu: number }): Promise<void> {
    await this.limit((s) =>
      s.newLink({}, { ifname: name, mtu: opts.mtu, address: macToBuf(opts.mac), linkinfo: nlattr(1, Buffer.from('bridge\0')) },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL }));
  }

  async createVxlan(name: string, opts: { vni: number; local: string; master: number; mtu: number }): Promise<void> {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(4789);
    const data = materialize(ifla.formatVxlan({ id: opts.vni, learning: 0, proxy: 1, port, local: ipToBuf(opts.local) }));
    const linkinfo = Buffer.concat([nlattr(1, Buffer.from('vxlan\0')), nlattr(2, data)]);
    await this.limit((s) =>
      s.newLink({}, { ifname: name, mtu: opts.mtu, master: opts.master, linkinfo }, { flags: FlagsNew.CREATE | FlagsNew.EXCL }));
  }

  /** veth pair: host end here (on `master`), peer created directly in the namespace of `peerPid`. */
  async createVeth(opts: { name: string; alias: string; master: number; mtu: number; peerName: string; peerPid: number; peerMac: string }): Promise<void> {
    const peer = Buffer.concat([
      rt.formatLink({}),
      materialize(ifla.formatLinkAttrs({ ifname: opts.peerName, netNsPid: opts.peerPid, mtu: opts.mtu, address: macToBuf(opts.peerMac) })),
    ]);
    const linkinfo = Buffer.concat([nlattr(1, Buffer.from('veth\0')), nlattr(2, nlattr(1, peer))]);
    await this.limit((s) =>
      s.newLink({}, { ifname: opts.name, ifalias: opts.alias, mtu: opts.mtu, master: opts.master, linkinfo },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL }));
  }

  async setLink(index: number, opts: { up?: boolean; mac?: string; mtu?: number; master?: number }): Promise<void> {
    const data = opts.up === undefined ? { index } : { index, flags: opts.up ? { up: true as const } : {}, change: { up: true as const } };
    const attrs = { ...(opts.mac ? { address: macToBuf(opts.mac) } : {}), ...(opts.mtu ? { mtu: opts.mtu } : {}),
      ...(opts.master ? { master: opts.master } : {}) };
    await this.limit((s) => s.setLink(data, attrs));
  }

  /** Deletes a link; a missing link is fine. */
  async deleteLink(index: number): Promise<void> {
    try {
      await this.limit((s) => s.delLink({ index }));
    } catch (err) {
      if (!isErrno(err, 'ENODEV')) throw err;
    }
  }

  async addresses(index: number): Promise<AddrInfo[]> {
    const msgs = await this.dump((s) => s.getAddresses({ family: AF_INET }));
    return msgs
      .filter((m) => m.data.index === index && m.attrs.local)
      .map((m) => ({ index, address: bufToIp(m.attrs.local!), prefixLen: m.data.prefixlen!, secondary: !!m.data.flags?.secondary }));
  }

  async addAddress(index: number, address: string, prefixLen: number): Promise<void> {
    const a = ipToBuf(address);
    await this.limit((s) => s.newAddress({ family: AF_INET, prefixlen: prefixLen, index }, { local: a, address: a },
      { flags: FlagsNew.CREATE | FlagsNew.EXCL }));
  }

  async delAddress(index: number, address: string, prefixLen: number): Promise<void> {
    const a = ipToBuf(address);
    try {
      await this.limit((s) => s.delAddress({ family: AF_INET, prefixlen: prefixLen, index }, { local: a, address: a }));
    } catch (err) {
      if (!isErrno(err, 'EADDRNOTAVAIL')) throw err;
    }
  }

  /** Static FDB entries of a VXLAN device (the dump ignores the ifindex filter: filter here). */
  async fdb(index: number): Promise<FdbEntry[]> {
    const msgs = await this.dump((s) => s.getNeighbors({ family: AF_BRIDGE, ifindex: index }));
    return msgs
      .filter((m) => m.data.ifindex === index && m.attrs.lladdr && m.attrs.dst && m.attrs.dst.length === 4)
      .map((m) => ({ mac: bufToMac(m.attrs.lladdr!), dst: bufToIp(m.attrs.dst!) }));
  }

  /** Addresses with an unresolved (incomplete/failed) IPv4 neighbour entry on a device. */
  async unresolved(index: number): Promise<string[]> {
    const msgs = await this.dump((s) => s.getNeighbors({ family: AF_INET, ifindex: index }));
    return msgs
      .filter((m) => m.data.ifindex === index && (m.data.state?.incomplete || m.data.state?.failed) && m.attrs.dst)
      .map((m) => bufToIp(m.attrs.dst!));
  }

  /** Permanent IPv4 neighbour entries of a device. */
  async neighbours(index: number): Promise<NeighEntry[]> {
    const msgs = await this.dump((s) => s.getNeighbors({ family: AF_INET, ifindex: index }));
    return msgs
      .filter((m) => m.data.ifindex === index && m.data.state?.permanent && m.attrs.dst && m.attrs.lladdr)
      .map((m) => ({ address: bufToIp(m.attrs.dst!), mac: bufToMac(m.attrs.lladdr!) }));
  }

  fdbAdd(index: number, e: FdbEntry) {
    return (s: Socket) => s.newNeighbor({ family: AF_BRIDGE, ifindex: index, state: { permanent: true }, flags: { self: true } },
      { lladdr: macToBuf(e.mac), dst: ipToBuf(e.dst) }, { flags: FlagsNew.CREATE | FlagsNew.APPEND });
  }

  fdbDel(index: number, e: FdbEntry) {
    return (s: Socket) => s.delNeighbor({ family: AF_BRIDGE, ifindex: index, flags: { self: true } },
      { lladdr: macToBuf(e.mac), dst: ipToBuf(e.dst) }).catch(ignore('ENOENT'));
  }

  neighReplace(index: number, e: NeighEntry) {
    return (s: Socket) => s.newNeighbor({ family: AF_INET, ifindex: index, state: { permanent: true } },
      { dst: ipToBuf(e.address), lladdr: macToBuf(e.mac) }, { flags: FlagsNew.CREATE | FlagsNew.REPLACE });
  }

  /** Resolves a pending entry at once (its queued packets leave now instead of after the next ARP retry). */
  neighResolve(index: number, e: NeighEntry) {
    return (s: Socket) => s.newNeighbor({ family: AF_INET, ifindex: index, state: { reachable: true } },
      { dst: ipToBuf(e.address), lladdr: macToBuf(e.mac) }, { flags: FlagsNew.REPLACE }).catch(ignore('ENOENT'));
  }

  neighDel(index: number, address: string) {
    return (s: Socket) => s.delNeighbor({ family: AF_INET, ifindex: index }, { dst: ipToBuf(address) }).catch(ignore('ENOENT'));
  }
}

function ignore(code: string) {
  return (err: unknown) => {
    if (!isErrno(err, code)) throw err;
    return [];
  };
}
