// Owns Docker's log wire format: the stdcopy multiplexed frames (8-byte
// header: stream byte, 3 zero bytes, big-endian payload length) read from
// dockerd and written to API clients, and the line layout dockerd's
// WriteLogStream produces (timestamp, then details, then the line).

export type LogStream = 'stdout' | 'stderr';

export interface LogLine {
  stream: LogStream;
  /** RFC 3339 timestamp with 9 fraction digits, as dockerd prints it */
  ts: string;
  /** the line with its newline */
  text: string;
}

/** incremental parser of stdcopy frames whose payloads start with dockerd's timestamp */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);
  private partial: Record<LogStream, string> = { stdout: '', stderr: '' };

  /** `raw`: the source is a TTY container (no frames, everything is stdout) */
  constructor(private readonly raw = false) {}

  push(chunk: Buffer): LogLine[] {
    const out: LogLine[] = [];
    if (this.raw) {
      this.lines('stdout', chunk.toString('utf8'), out);
      return out;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      const type = this.buf[0];
      const payload = this.buf.subarray(8, 8 + size).toString('utf8');
      this.buf = this.buf.subarray(8 + size);
      if (type === 1 || type === 2) this.lines(type === 1 ? 'stdout' : 'stderr', payload, out);
    }
    return out;
  }

  /** what is left without a newline, as final lines */
  end(): LogLine[] {
    const out: LogLine[] = [];
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.partial[s]) this.lines(s, '\n', out);
    }
    return out;
  }

  private lines(stream: LogStream, text: string, out: LogLine[]): void {
    let data = this.partial[stream] + text;
    let nl;
    while ((nl = data.indexOf('\n')) >= 0) {
      const line = data.slice(0, nl + 1);
      data = data.slice(nl + 1);
      const sp = line.indexOf(' ');
      const ts = sp > 0 && /^\d{4}-\d\d-\d\dT/.test(line) ? line.slice(0, sp) : '';
      out.push({ stream, ts: fixedTs(ts), text: ts ? line.slice(sp + 1) : line });
    }
    this.partial[stream] = data;
  }
}

/** dockerd's RFC3339NanoFixed: always 9 fraction digits, so strings sort by time */
export function fixedTs(ts: string): string {
  if (!ts) return new Date().toISOString().replace(/\.(\d+)Z$/, (_m, f: string) => `.${f.padEnd(9, '0')}Z`);
  return ts.replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)$/, (_m, frac: string | undefined, zone: string) =>
    `.${(frac ?? '.').slice(1).padEnd(9, '0').slice(0, 9)}${zone}`);
}

export function frame(stream: LogStream | 'system', payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(8);
  head[0] = stream === 'stdout' ? 1 : stream === 'stderr' ? 2 : 3;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** dockerd's attrsByteSlice: sorted keys, query-escaped, comma-joined */
export function detailsText(attrs: Record<string, string>): string {
  return Object.keys(attrs).sort().map((k) => `${qe(k)}=${qe(attrs[k]!)}`).join(',');
}

/** Go's url.QueryEscape */
function qe(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface FormatOptions { timestamps: boolean; details: boolean }

/** one line as WriteLogStream lays it out */
export function formatLine(line: LogLine, attrs: Record<string, string>, o: FormatOptions): string {
  let text = line.text;
  if (o.details) text = `${detailsText(attrs)} ${text}`;
  if (o.timestamps) text = `${line.ts} ${text}`;
  return text;
}
