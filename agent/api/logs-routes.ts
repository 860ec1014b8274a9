// Owns GET /services/{id}/logs and /tasks/{id}/logs: parses dockerd's query
// (follow, tail, since, timestamps, details, stdout, stderr), picks the
// tasks, and relays their logs: the manager's own node reads the local
// dockerd, other nodes upload through the log broker over their sessions.
import type Docker from 'dockerode';
import { invalid } from '../common/errors.js';
import type { Task } from '../common/types.js';
import { dockerClient } from '../docker.js';
import { resolve } from '../manager/controlapi/index.js';
import { logBroker } from '../manager/logs/broker.js';
import { relayLogs, type LogsQuery, type OpenSource } from '../manager/logs/relay.js';
import { openTaskLogs } from '../worker/logs.js';
import { type Ctx, type Route, route } from './context.js';
import { boolParam } from './respond.js';

const ID = '([^/]+)';
const clients = new Map<string, Docker>();

function localDocker(c: Ctx): Docker {
  let d = clients.get(c.upstream.dockerHost);
  if (!d) { d = dockerClient(c.upstream.dockerHost); clients.set(c.upstream.dockerHost, d); }
  return d;
}

function query(c: Ctx): LogsQuery {
  const q: LogsQuery = {
    follow: boolParam(c.query, 'follow'),
    tail: c.query.get('tail') ?? 'all',
    since: c.query.get('since') ?? '',
    timestamps: boolParam(c.query, 'timestamps'),
    details: boolParam(c.query, 'details'),
    stdout: boolParam(c.query, 'stdout'),
    stderr: boolParam(c.query, 'stderr'),
  };
  if (!q.stdout && !q.stderr) throw invalid('Bad parameters: you must choose at least one stream');
  if (q.tail !== 'all' && q.tail !== '' && !/^-?\d+$/.test(q.tail)) throw invalid(`invalid value for "tail": "${q.tail}"`);
  if (q.since && !/^\d+(\.\d+)?$/.test(q.since)) throw invalid(`invalid value for "since": "${q.since}"`);
  return q;
}

/** tasks that ran on a node, in the order the store keeps them */
function withNode(tasks: Task[]): Task[] {
  return tasks.filter((t) => !!t.NodeID && t.Status.State !== 'pending' && t.Status.State !== 'assigned' && t.Status.State !== 'new');
}

function opener(c: Ctx, q: LogsQuery): OpenSource {
  const store = c.backend.control().store;
  const self = c.backend.info().NodeID;
  const broker = logBroker(store);
  return async (task, sink) => {
    const o = { follow: q.follow, tail: q.tail, since: q.since };
    if (task.NodeID === self) {
      const logs = await openTaskLogs(localDocker(c), task.ID, o);
      if (!logs) { sink.end('no container'); return () => undefined; }
      sink.open(logs.tty);
      logs.stream.on('data', (b: Buffer) => sink.data(b));
      logs.stream.on('end', () => sink.end());
      logs.stream.on('close', () => sink.end());
      logs.stream.on('error', (e) => sink.end(e.message));
      return () => logs.stream.destroy();
    }
    if (!broker.hasSession(task.NodeID!)) { sink.end('node not connected'); return () => undefined; }
    return broker.open(task.NodeID!, { taskId: task.ID, ...o }, sink);
  };
}

export const logsRoutes: Route[] = [
  route('GET', new RegExp(`^/services/${ID}/logs$`), async (c) => {
    const q = query(c);
    const store = c.backend.control().store;
    const svc = resolve(store, 'services', c.params[0]!);
    const tasks = withNode(store.byIndex('tasks', 'service', svc.ID));
    await relayLogs(c.res, tasks, opener(c, q), q);
  }),
  route('GET', new RegExp(`^/tasks/${ID}/logs$`), async (c) => {
    const q = query(c);
    const store = c.backend.control().store;
    const task = resolve(store, 'tasks', c.params[0]!);
    await relayLogs(c.res, withNode([task]), opener(c, q), q);
  }),
];
