// Owns the service-discovery DNS server netd runs on each overlay gateway
// address: UDP and TCP listeners per address, answers from `Records` for our
// names (A, PTR; other types → NOERROR/empty; unknown names in our zone →
// NXDOMAIN), everything else forwarded upstream (SERVFAIL when that fails),
// malformed packets counted and dropped. Counters via stats().
import dgram from 'node:dgram';
import net from 'node:net';
import { logger } from '../../agent/common/log.js';
import type { Records } from './records.js';
import { Forwarder, parseUpstream, systemNameservers, type Upstream } from './forwarder.js';
import { StatsRecorder, typeName, type DnsStats } from './stats.js';
import { serveTcpConnection } from './tcp.js';
import {
  CLASS_IN, RCODE, TYPE, UDP_MAX,
  encodeAnswer, encodeHeaderOnly, encodeTruncated, parseQuery, reverseName,
  type AnswerSpec, type Query,
} from './wire.js';

const log = logger('netd/dns');

export interface DnsServerOptions {
  records: Records;
  /** upstream resolvers (`ip` or `ip:port`); default: nameservers in /etc/resolv.conf. Our own listeners are always skipped. */
  upstream?: string[];
  /** overall deadline for a forwarded query (default 2000 ms) */
  forwardTimeoutMs?: number;
  /** a TCP connection with no complete message for this long is closed (default 10000 ms) */
  tcpIdleTimeoutMs?: number;
  /** TCP connections per listening address (default 256); more are refused */
  maxTcpConnections?: number;
  /** TTL when Records gives none (default 1 s) */
  defaultTtl?: number;
}

interface Listener {
  addr: string;
  port: number;
  udp: dgram.Socket;
  tcp: net.Server;
  conns: Set<net.Socket>;
}

type Local = { spec: AnswerSpec; result: 'noerror' | 'nxdomain' | 'servfail' } | undefined;

export class DnsServer {
  readonly #records: Records;
  readonly #forwarder: Forwarder;
  readonly #upstreams: Upstream[];
  readonly #idleMs: number;
  readonly #maxConns: number;
  readonly #ttl: number;
  readonly #listeners = new Map<string, Listener>();
  readonly #stats = new StatsRecorder();

  constructor(opts: DnsServerOptions) {
    this.#records = opts.records;
    this.#upstreams = (opts.upstream ?? systemNameservers()).map(parseUpstream);
    this.#idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
    this.#maxConns = opts.maxTcpConnections ?? 256;
    this.#ttl = opts.defaultTtl ?? 1;
    this.#forwarder = new Forwarder({ upstreams: () => this.#liveUpstreams(), timeoutMs: opts.forwardTimeoutMs ?? 2000 });
  }

  /** Serve UDP and TCP on addr:port (port 0: one free port for both). Resolves to the port. */
  async listen(addr: string, port: number): Promise<number> {
    if (this.#listeners.has(addr)) throw new Error(`DNS already listening on ${addr}`);
    for (let attempt = 0; ; attempt++) {
      try {
        const l = await this.#bind(addr, port);
        this.#listeners.set(addr, l);
        log.info({ addr, port: l.port }, 'dns listening');
        return l.port;
      } catch (err) {
        // port 0: UDP got a port that TCP could not have; try another
        if (port !== 0 || attempt >= 10 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
  }

  async unlisten(addr: string): Promise<void> {
    const l = this.#listeners.get(addr);
    if (!l) return;
    this.#listeners.delete(addr);
    for (const c of l.conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => l.udp.close(() => r())),
      new Promise<void>((r) => l.tcp.close(() => r())),
    ]);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#listeners.keys()].map((a) => this.unlisten(a)));
    this.#forwarder.close();
  }

  /** Addresses (and ports) currently served. */
  addresses(): { addr: string; port: number }[] {
    return [...this.#listeners.values()].map((l) => ({ addr: l.addr, port: l.port }));
  }

  stats(): DnsStats {
    return this.#stats.snapshot();
  }

  #liveUpstreams(): Upstream[] {
    return this.#upstreams.filter(
      (u) => ![...this.#listeners.values()].some((l) => l.port === u.port && l.addr === u.host),
    );
  }

  async #bind(addr: string, port: number): Promise<Listener> {
    const udp = dgram.createSocket({ type: net.isIPv6(addr) ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
    const conns = new Set<net.Socket>();
    const tcp = net.createServer({ allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: addr, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const bound = udp.address().port;
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: addr, port: bound, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      udp.on('error', (err) => log.warn({ err, addr }, 'dns udp socket error'));
      udp.on('message', (msg, rinfo) => this.#onUdp(udp, msg, rinfo));
      tcp.on('error', (err) => log.warn({ err, addr }, 'dns tcp server error'));
      tcp.on('connection', (sock) => this.#onTcp(sock, conns));
      return { addr, port: bound, udp, tcp, conns };
    } catch (err) {
      try { udp.close(); } catch { /* not bound */ }
      tcp.close();
      throw err;
    }
  }

  #onUdp(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const reply = this.answer(msg, rinfo.address, false);
    if (reply === undefined) return;
    if (!(reply instanceof Promise)) {
      sock.send(reply, rinfo.port, rinfo.address);
      return;
    }
    reply.then((r) => {
      try {
        if (r) sock.send(r, rinfo.port, rinfo.address);
      } catch {
        // the listener was closed while the query was being forwarded
      }
    }, () => undefined);
  }

  #onTcp(sock: net.Socket, conns: Set<net.Socket>): void {
    if (conns.size >= this.#maxConns) {
      this.#stats.tcp.rejected++;
      sock.destroy();
      return;
    }
    conns.add(sock);
    this.#stats.tcp.accepted++;
    this.#stats.tcp.open++;
    sock.on('close', () => {
      conns.delete(sock);
      this.#stats.tcp.open--;
    });
    serveTcpConnection(sock, {
      idleMs: this.#idleMs,
      maxInFlight: 32,
      handle: (msg, client) => this.answer(msg, client, true),
      onTimeout: () => this.#stats.tcp.timedOut++,
    });
  }

  /**
   * One query message in, one answer out (undefined: dropped). Never throws.
   * The UDP and TCP listeners call it; tests and embedders may too.
   */
  answer(msg: Buffer, client: string, viaTcp = false): Buffer | Promise<Buffer | undefined> | undefined {
    const t0 = performance.now();
    const p = parseQuery(msg);
    if (!p.ok) {
      if (!('id' in p)) {
        this.#stats.record('unknown', 'dropped');
        return undefined;
      }
      this.#stats.record('unknown', p.rcode === RCODE.NOTIMP ? 'notimp' : 'formerr', t0);
      return encodeHeaderOnly(p.id, p.flags, p.rcode);
    }
    const q = p.query;
    const qt = typeName(q.qtype);
    const limit = viaTcp ? 65535 : Math.min(q.udpLimit, UDP_MAX);
    let local: Local;
    try {
      local = this.#answerLocal(q, client.startsWith('::ffff:') ? client.slice(7) : client);
    } catch (err) {
      log.warn({ err, name: q.name }, 'dns records lookup failed');
      local = { spec: { rcode: RCODE.SERVFAIL, aa: false, ttl: 0 }, result: 'servfail' };
    }
    if (local) {
      this.#stats.record(qt, local.result, t0);
      return encodeAnswer(q, local.spec, limit);
    }
    return this.#forwarder.forward(msg, q.question.length, viaTcp).then(
      (reply) => {
        if (!reply) {
          this.#stats.record(qt, 'servfail', t0);
          return encodeAnswer(q, { rcode: RCODE.SERVFAIL, aa: false, ttl: 0 }, limit);
        }
        this.#stats.record(qt, 'forwarded', t0);
        if (!viaTcp && reply.length > q.udpLimit) return encodeTruncated(q, reply);
        return reply;
      },
      () => {
        this.#stats.record(qt, 'servfail', t0);
        return encodeAnswer(q, { rcode: RCODE.SERVFAIL, aa: false, ttl: 0 }, limit);
      },
    );
  }

  /** Our answer for q, or undefined to forward it. */
  #answerLocal(q: Query, client: string): Local {
    if (q.qclass !== CLASS_IN && q.qclass !== TYPE.ANY) return undefined;
    if (q.qtype === TYPE.PTR) {
      const ip = reverseName(q.name);
      if (ip !== undefined) {
        const names = this.#records.reverse(ip, client);
        if (names === undefined) return undefined;
        return { spec: { rcode: RCODE.NOERROR, aa: true, ttl: this.#ttl, ptrs: names }, result: 'noerror' };
      }
    }
    const r = this.#records.lookup(q.name, client);
    if (r === undefined) return undefined;
    if (r === 'nxdomain') return { spec: { rcode: RCODE.NXDOMAIN, aa: true, ttl: this.#ttl }, result: 'nxdomain' };
    const addrs = q.qtype === TYPE.A || q.qtype === TYPE.ANY ? r.addrs : undefined;
    return { spec: { rcode: RCODE.NOERROR, aa: true, ttl: r.ttl ?? this.#ttl, addrs }, result: 'noerror' };
  }
}
