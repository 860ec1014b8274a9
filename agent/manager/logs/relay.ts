// Owns one `service logs` / `task logs` answer: it opens a source per task
// (the local dockerd or a worker's upload through the broker), parses the
// frames, adds the com.docker.swarm.* details Docker adds, and writes
// stdcopy frames to the API client interleaved by timestamp. Without follow
// it answers once every source has ended; with follow it keeps streaming
// until the client goes away, and then cancels every source.
import type { ServerResponse } from 'node:http';
import { logger } from '../../common/log.js';
import type { Task } from '../../common/types.js';
import type { LogSink } from './broker.js';
import { FrameParser, formatLine, frame, type LogLine } from './frames.js';

const log = logger('logs');
/** follow mode: lines are held this long so lines from several nodes go out in time order */
const REORDER_MS = 150;

export interface LogsQuery {
  follow: boolean;
  tail: string;
  since: string;
  timestamps: boolean;
  details: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** opens one task's log source into `sink`; returns its cancel function */
export type OpenSource = (task: Task, sink: LogSink) => Promise<() => void>;

interface Pending { line: LogLine; attrs: Record<string, string>; seq: number }

export function swarmAttrs(task: Task): Record<string, string> {
  return {
    'com.docker.swarm.node.id': task.NodeID ?? '',
    'com.docker.swarm.service.id': task.ServiceID,
    'com.docker.swarm.task.id': task.ID,
  };
}

export async function relayLogs(res: ServerResponse, tasks: Task[], open: OpenSource, q: LogsQuery): Promise<void> {
  res.writeHead(200, {});
  res.flushHeaders();
  let held: Pending[] = [];
  let seq = 0;
  let live = tasks.length;
  let closed = false;
  const cancels: (() => void)[] = [];

  const flush = () => {
    if (!held.length || closed) return;
    const out = held.sort((a, b) => (a.line.ts < b.line.ts ? -1 : a.line.ts > b.line.ts ? 1 : a.seq - b.seq));
    held = [];
    const bufs = [];
    for (const p of out) {
      if ((p.line.stream === 'stdout' && !q.stdout) || (p.line.stream === 'stderr' && !q.stderr)) continue;
      bufs.push(frame(p.line.stream, formatLine(p.line, p.attrs, q)));
    }
    if (bufs.length) res.write(Buffer.concat(bufs));
  };
  const timer = q.follow ? setInterval(flush, REORDER_MS) : undefined;
  const finish = () => {
    if (closed) return;
    flush();
    closed = true;
    clearInterval(timer);
    for (const c of cancels.splice(0)) c();
    res.end();
  };
  res.on('close', () => {
    closed = true;
    clearInterval(timer);
    for (const c of cancels.splice(0)) c();
  });

  const sourceEnded = () => {
    live--;
    if (live === 0 && !q.follow) finish();
  };
  if (live === 0 && !q.follow) { finish(); return; }

  for (const task of tasks) {
    const attrs = swarmAttrs(task);
    let parser = new FrameParser();
    let ended = false;
    const sink: LogSink = {
      open: (tty) => { parser = new FrameParser(tty); },
      data: (chunk) => { for (const line of parser.push(chunk)) held.push({ line, attrs, seq: seq++ }); },
      end: (err) => {
        if (ended) return;
        ended = true;
        for (const line of parser.end()) held.push({ line, attrs, seq: seq++ });
        if (err) log.debug({ task: task.ID, err }, 'log source ended with an error');
        sourceEnded();
      },
    };
    try {
      const cancel = await open(task, sink);
      if (closed) cancel();
      else cancels.push(cancel);
    } catch (err) {
      sink.end((err as Error).message);
    }
  }
}
