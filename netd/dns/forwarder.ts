// Owns forwarding of names that are not ours to the upstream resolvers:
// UDP first (fresh random transaction id per query, answer matched on id,
// upstream address and question), TCP when the UDP answer is truncated or
// the client asked over TCP and the UDP answer was cut, next upstream on
// timeout, everything bounded by one overall deadline.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { HEADER_LEN, responseHeader } from './wire.js';

export interface Upstream { host: string; port: number }

/** `1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:5353` → host/port (default 53). */
export function parseUpstream(s: string): Upstream {
  const t = s.trim();
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracket) return { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : 53 };
  const v4 = /^([\d.]+):(\d+)$/.exec(t);
  if (v4) return { host: v4[1]!, port: Number(v4[2]) };
  if (!net.isIP(t)) throw new Error(`bad upstream DNS server address: ${s}`);
  return { host: t, port: 53 };
}

/** Nameserver addresses listed in resolv.conf text. */
export function resolvConfNameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && net.isIP(m[1]!.replace(/%.*$/, ''))) out.push(m[1]!.replace(/%.*$/, ''));
  }
  return out;
}

export function systemNameservers(path = '/etc/resolv.conf'): string[] {
  try {
    return resolvConfNameservers(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}

interface Pending {
  upstream: Upstream;
  question: Buffer;
  resolve: (reply: Buffer | undefined) => void;
  timer: NodeJS.Timeout;
}

const MAX_PENDING = 8192;

export class Forwarder {
  readonly #upstreams: () => Upstream[];
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  #sock4?: dgram.Socket;
  #sock6?: dgram.Socket;
  #closed = false;
  readonly #tcpSockets = new Set<net.Socket>();

  constructor(opts: { upstreams: () => Upstream[]; timeoutMs: number }) {
    this.#upstreams = opts.upstreams;
    this.#timeoutMs = opts.timeoutMs;
  }

  /**
   * Ask the upstreams. `msg` is the client's query as received; the answer
   * comes back with the client's id, or undefined when every upstream failed
   * or the deadline passed (→ SERVFAIL).
   */
  async forward(msg: Buffer, questionLen: number, wantFull: boolean): Promise<Buffer | undefined> {
    const ups = this.#upstreams();
    if (ups.length === 0 || this.#closed) return undefined;
    const clientId = msg.readUInt16BE(0);
    const deadline = Date.now() + this.#timeoutMs;
    const tries = Math.min(ups.length, 3);
    const perTry = Math.max(50, Math.floor(this.#timeoutMs / tries));
    for (let i = 0; i < tries && !this.#closed; i++) {
      const up = ups[i]!;
      const left = deadline - Date.now();
      if (left <= 0) break;
      let reply = await this.#udp(up, msg, questionLen, Math.min(perTry, left));
      if (reply && responseHeader(reply)?.tc) {
        const tcpLeft = deadline - Date.now();
        const full = tcpLeft > 0 ? await this.#tcp(up, msg, tcpLeft) : undefined;
        if (full) reply = full;
        else if (wantFull) reply = undefined;
      }
      if (reply) {
        reply.writeUInt16BE(clientId, 0);
        return reply;
      }
    }
    return undefined;
  }

  #udp(up: Upstream, msg: Buffer, questionLen: number, timeoutMs: number): Promise<Buffer | undefined> {
    if (this.#pending.size >= MAX_PENDING) return Promise.resolve(undefined);
    let id = randomInt(0x10000);
    while (this.#pending.has(id)) id = (id + 1) & 0xffff;
    const out = Buffer.from(msg);
    out.writeUInt16BE(id, 0);
    const sock = this.#socket(net.isIPv6(up.host));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(id, { upstream: up, question: out.subarray(HEADER_LEN, HEADER_LEN + questionLen), resolve, timer });
      sock.send(out, up.port, up.host, (err) => {
        if (err) this.#settle(id, undefined);
      });
    });
  }

  #settle(id: number, reply: Buffer | undefined): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(reply);
  }

  #onReply(reply: Buffer, rinfo: dgram.RemoteInfo): void {
    const h = responseHeader(reply);
    if (!h) return;
    const p = this.#pending.get(h.id);
    if (!p || rinfo.port !== p.upstream.port || !sameAddr(rinfo.address, p.upstream.host)) return;
    const q = reply.subarray(HEADER_LEN, HEADER_LEN + p.question.length);
    if (reply.readUInt16BE(4) !== 1 || !q.equals(p.question)) {
      // some servers answer FORMERR/NOTIMP without echoing the question: accept those
      if (reply.readUInt16BE(4) !== 0) return;
    }
    this.#settle(h.id, reply);
  }

  #socket(v6: boolean): dgram.Socket {
    const existing = v6 ? this.#sock6 : this.#sock4;
    if (existing) return existing;
    const s = dgram.createSocket(v6 ? 'udp6' : 'udp4');
    s.on('message', (m, r) => this.#onReply(m, r));
    s.on('error', () => undefined); // ICMP errors etc.: the per-query timeout handles them
    s.bind(0);
    s.unref();
    if (v6) this.#sock6 = s;
    else this.#sock4 = s;
    return s;
  }

  #tcp(up: Upstream, msg: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const id = randomInt(0x10000);
      const out = Buffer.allocUnsafe(msg.length + 2);
      out.writeUInt16BE(msg.length, 0);
      msg.copy(out, 2);
      out.writeUInt16BE(id, 2);
      let buf = Buffer.alloc(0);
      let done = false;
      const sock = net.connect({ host: up.host, port: up.port });
      this.#tcpSockets.add(sock);
      const finish = (r: Buffer | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#tcpSockets.delete(sock);
        sock.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      sock.on('connect', () => sock.write(out));
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) return;
        const reply = Buffer.from(buf.subarray(2, 2 + len));
        const h = responseHeader(reply);
        finish(h && h.id === id ? reply : undefined);
      });
      sock.on('error', () => finish(undefined));
      sock.on('close', () => finish(undefined));
    });
  }

  close(): void {
    this.#closed = true;
    for (const id of [...this.#pending.keys()]) this.#settle(id, undefined);
    for (const s of this.#tcpSockets) s.destroy();
    this.#tcpSockets.clear();
    this.#sock4?.close();
    this.#sock6?.close();
    this.#sock4 = this.#sock6 = undefined;
  }
}

function sameAddr(a: string, b: string): boolean {
  if (a === b) return true;
  return a.replace(/^::ffff:/, '') === b.replace(/^::ffff:/, '');
}
