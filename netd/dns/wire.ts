// Owns the DNS wire format on the hot path: decoding one query (header,
// single question, EDNS payload size) and encoding our own answers (A, PTR,
// empty, error) straight into a Buffer. dns2's bit-level Packet codec costs
// ~39 µs per query here (measured), which alone caps us below half of
// dnsmasq; this byte-level codec is ~1 µs. dns2 still decodes our answers in
// the tests, as an independent check of this encoder.

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const CLASS_IN = 1;
export const HEADER_LEN = 12;
export const UDP_MIN = 512;
/** Largest UDP answer we send, whatever the client advertises (DNS flag day 2020). */
export const UDP_MAX = 1232;

export interface Query {
  id: number;
  /** header flags word as received (opcode, RD, CD…) */
  flags: number;
  opcode: number;
  /** lower-cased name without trailing dot ('' for the root) */
  name: string;
  qtype: number;
  qclass: number;
  /** the question section exactly as received (name + type + class) */
  question: Buffer;
  /** EDNS OPT present in the additional section */
  edns: boolean;
  /** largest UDP response the client accepts (512 without EDNS, else its EDNS size, at least 512) */
  udpLimit: number;
}

export type ParseResult =
  | { ok: true; query: Query }
  /** header readable but not a query we answer: reply with this rcode (FORMERR, NOTIMP) */
  | { ok: false; rcode: number; id: number; flags: number }
  /** not worth an answer: drop silently */
  | { ok: false; rcode: -1 };

const DROP = { ok: false, rcode: -1 } as const;

/** Decode a query message. Never throws: garbage gives `DROP`. */
export function parseQuery(msg: Buffer): ParseResult {
  if (msg.length < HEADER_LEN) return DROP;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return DROP; // a response: never answer those (loops, reflection)
  const opcode = (flags >> 11) & 0xf;
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  const ns = msg.readUInt16BE(8);
  const ar = msg.readUInt16BE(10);
  if (opcode !== 0) return { ok: false, rcode: RCODE.NOTIMP, id, flags };
  if (qd !== 1) return { ok: false, rcode: RCODE.FORMERR, id, flags };
  // Question name: labels only (a pointer in the first name of a message is malformed).
  let off = HEADER_LEN;
  let name = '';
  let wire = 1;
  for (;;) {
    if (off >= msg.length) return DROP;
    const len = msg[off]!;
    off++;
    if (len === 0) break;
    if (len > 63) return { ok: false, rcode: RCODE.FORMERR, id, flags };
    wire += len + 1;
    if (wire > 255 || off + len > msg.length) return DROP;
    const label = msg.toString('latin1', off, off + len);
    name = name ? `${name}.${label}` : label;
    off += len;
  }
  if (off + 4 > msg.length) return DROP;
  const qtype = msg.readUInt16BE(off);
  const qclass = msg.readUInt16BE(off + 2);
  off += 4;
  const question = msg.subarray(HEADER_LEN, off);
  // Skip answer/authority records (legal but unusual in a query), find OPT in additionals.
  let edns = false;
  let udpLimit = UDP_MIN;
  const records = an + ns + ar;
  for (let i = 0; i < records; i++) {
    const rr = skipName(msg, off);
    if (rr < 0 || rr + 10 > msg.length) return DROP;
    const rtype = msg.readUInt16BE(rr);
    const rclass = msg.readUInt16BE(rr + 2);
    const rdlen = msg.readUInt16BE(rr + 8);
    off = rr + 10 + rdlen;
    if (off > msg.length) return DROP;
    if (i >= an + ns && rtype === TYPE.OPT) {
      if (edns) return { ok: false, rcode: RCODE.FORMERR, id, flags }; // RFC 6891 §6.1.1
      edns = true;
      udpLimit = Math.max(rclass, UDP_MIN);
    }
  }
  return {
    ok: true,
    query: { id, flags, opcode, name: name.toLowerCase(), qtype, qclass, question, edns, udpLimit },
  };
}

/** Offset just past a (possibly compressed) name starting at `off`, or -1. */
function skipName(msg: Buffer, off: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (off >= msg.length) return -1;
    const len = msg[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= msg.length ? off + 2 : -1;
    if (len & 0xc0) return -1;
    off += len + 1;
  }
  return -1;
}

export interface AnswerSpec {
  rcode: number;
  /** authoritative answer (our own names) */
  aa: boolean;
  ttl: number;
  /** A records (IPv4 dotted quads) */
  addrs?: readonly string[];
  /** PTR target names */
  ptrs?: readonly string[];
}

const OPT_RR = Buffer.from([0, 0, 41, UDP_MAX >> 8, UDP_MAX & 0xff, 0, 0, 0, 0, 0, 0]);

/**
 * Encode a response to `q`. When it exceeds `limit` bytes (UDP), the answer
 * records are dropped and TC is set so the client retries over TCP.
 */
export function encodeAnswer(q: Query, a: AnswerSpec, limit = 65535): Buffer {
  limit = Math.min(limit, 65535);
  const ptrWire = a.ptrs?.map(encodeName) ?? [];
  const nA = a.addrs?.length ?? 0;
  let size = HEADER_LEN + q.question.length + (q.edns ? OPT_RR.length : 0) + nA * 16;
  for (const p of ptrWire) size += 12 + p.length;
  let truncated = false;
  if (size > limit) {
    truncated = true;
    size = HEADER_LEN + q.question.length + (q.edns ? OPT_RR.length : 0);
  }
  const out = Buffer.allocUnsafe(size);
  const answers = truncated ? 0 : nA + ptrWire.length;
  writeHeader(out, q.id, q.flags, a.rcode, a.aa, truncated, answers, q.edns ? 1 : 0);
  let off = HEADER_LEN + q.question.copy(out, HEADER_LEN);
  if (!truncated) {
    for (let i = 0; i < nA; i++) {
      off = writeRRHead(out, off, TYPE.A, a.ttl, 4);
      off = writeIPv4(out, off, a.addrs![i]!);
    }
    for (const p of ptrWire) {
      off = writeRRHead(out, off, TYPE.PTR, a.ttl, p.length);
      off += p.copy(out, off);
    }
  }
  if (q.edns) OPT_RR.copy(out, off);
  return out;
}

/** A header-only error answer (FORMERR, NOTIMP) for a message we could not take apart. */
export function encodeHeaderOnly(id: number, flags: number, rcode: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LEN);
  writeHeader(out, id, flags, rcode, false, false, 0, 0);
  out.writeUInt16BE(0, 4);
  return out;
}

/** Header + question only, TC set: what a UDP client gets when a forwarded answer does not fit. */
export function encodeTruncated(q: Query, upstreamReply: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LEN + q.question.length);
  upstreamReply.copy(out, 0, 0, 4);
  out.writeUInt16BE(q.id, 0);
  out[2] = out[2]! | 0x02;
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(0, 10);
  q.question.copy(out, HEADER_LEN);
  return out;
}

function writeHeader(out: Buffer, id: number, qflags: number, rcode: number, aa: boolean, tc: boolean, an: number, ar: number): void {
  out.writeUInt16BE(id, 0);
  // QR=1, opcode as asked, AA, TC, RD echoed, RA=1 (we forward), CD echoed, rcode.
  let flags = 0x8000 | (qflags & 0x7800) | (qflags & 0x0100) | 0x0080 | (qflags & 0x0010) | (rcode & 0xf);
  if (aa) flags |= 0x0400;
  if (tc) flags |= 0x0200;
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(an, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(ar, 10);
}

function writeRRHead(out: Buffer, off: number, type: number, ttl: number, rdlen: number): number {
  out.writeUInt16BE(0xc00c, off); // pointer to the question name
  out.writeUInt16BE(type, off + 2);
  out.writeUInt16BE(CLASS_IN, off + 4);
  out.writeUInt32BE(ttl >>> 0, off + 6);
  out.writeUInt16BE(rdlen, off + 10);
  return off + 12;
}

function writeIPv4(out: Buffer, off: number, addr: string): number {
  let part = 0;
  let n = 0;
  for (let i = 0; i < addr.length; i++) {
    const c = addr.charCodeAt(i);
    if (c === 46) {
      out[off + n++] = part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  out[off + n] = part;
  return off + 4;
}

/** Uncompressed wire form of a name (labels over 63 octets are cut; names kept under 255). */
export function encodeName(name: string): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  const parts: Buffer[] = [];
  let total = 1;
  for (const l of labels) {
    const b = Buffer.from(l, 'latin1').subarray(0, 63);
    if (total + b.length + 1 > 255) break;
    total += b.length + 1;
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** `4.3.2.1.in-addr.arpa` → `1.2.3.4`; undefined for anything else. */
export function reverseName(name: string): string | undefined {
  const suffix = '.in-addr.arpa';
  if (!name.endsWith(suffix)) return undefined;
  const parts = name.slice(0, -suffix.length).split('.');
  if (parts.length !== 4) return undefined;
  for (const p of parts) if (!/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(p)) return undefined;
  return parts.reverse().join('.');
}

/** Answer ID, flags and rcode of a response message (for forwarding), or undefined if too short. */
export function responseHeader(msg: Buffer): { id: number; flags: number; tc: boolean; rcode: number } | undefined {
  if (msg.length < HEADER_LEN) return undefined;
  const flags = msg.readUInt16BE(2);
  if (!(flags & 0x8000)) return undefined;
  return { id: msg.readUInt16BE(0), flags, tc: (flags & 0x0200) !== 0, rcode: flags & 0xf };
}
