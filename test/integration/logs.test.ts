// Logs end to end with the stock docker CLI: a manager and a worker (two
// agent processes on loopback, joined over mTLS), a global service with a
// task on each; `service logs` brings both nodes' lines in one stream (the
// worker's through its session upload), with timestamps, tail, details,
// stdout/stderr split, follow, and task logs; the raw API answers stdcopy frames.
import { spawn } from 'node:child_process';
import http from 'node:http';
import test from 'ava';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { DOCKER_CLI } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

let mgr: TestAgent;
let w1: TestAgent;
const svc = `logs${Math.random().toString(36).slice(2, 7)}`;

async function ok(a: TestAgent, args: string[]): Promise<string> {
  const r = await a.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function allLines(args: string[]): Promise<string[]> {
  const r = await mgr.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return (r.stdout + r.stderr).split('\n').filter(Boolean);
}

function rawGet(socket: string, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: socket, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

function frames(buf: Buffer): { stream: number; text: string }[] {
  const out = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const size = buf.readUInt32BE(pos + 4);
    out.push({ stream: buf[pos]!, text: buf.subarray(pos + 8, pos + 8 + size).toString() });
    pos += 8 + size;
  }
  return out;
}

test.before(async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  mgr = await startAgent('lgm', ['--listen-addr', addr]);
  w1 = await startAgent('lgw');
  const init = await ok(mgr, ['swarm', 'init', '--advertise-addr', addr]);
  const token = /--token (\S+)/.exec(init)![1]!;
  await ok(w1, ['swarm', 'join', '--token', token, addr]);
  await waitFor('worker ready', async () => (await ok(mgr, ['node', 'ls', '--format', '{{.Status}}'])).trim().split('\n').filter((l) => l === 'Ready').length === 2);
  await ok(mgr, ['service', 'create', '--detach', '--mode', 'global', '--name', svc, '--stop-grace-period', '1s', 'local/busybox:1',
    'sh', '-c', 'i=0; while true; do echo out-$i; echo err-$i >&2; i=$((i+1)); sleep 1; done']);
  await waitFor('a task on each node', async () => (await ok(mgr, ['service', 'ls', '--filter', `name=${svc}`, '--format', '{{.Replicas}}'])).trim() === '2/2', { timeoutMs: 60_000 });
});

test.after.always(async () => {
  await mgr?.docker(['service', 'rm', svc]).catch(() => undefined);
  await Promise.all([w1?.cleanup(), mgr?.cleanup()]);
});

test.serial('service logs: both nodes in one stream, stdout and stderr apart, in time order with --timestamps', async (t) => {
  const both = await waitFor('lines from both nodes', async () => {
    const r = await mgr.docker(['service', 'logs', '--timestamps', svc]);
    const hosts = new Set([...r.stdout.matchAll(/@(\S+)\s+\|/g)].map((m) => m[1]));
    return hosts.has(mgr.hostname) && hosts.has(w1.hostname) && r.stderr.includes('err-') ? r : undefined;
  }, { timeoutMs: 30_000 });
  t.regex(both.stdout, /out-\d+/);
  t.notRegex(both.stdout, /err-\d+/);
  t.regex(both.stderr, /err-\d+/);
  t.notRegex(both.stderr, /out-\d+/);
  // the CLI prints the timestamp first: `<ts> <task>@<node>    | out-N`
  const ts = [...both.stdout.matchAll(/^(\d{4}-\d\d-\d\dT\S+) \S+@\S+\s+\| out-/gm)].map((m) => m[1]!);
  t.true(ts.length >= 2);
  t.deepEqual([...ts].sort(), ts, 'stdout lines are interleaved by timestamp');
  t.regex(ts[0]!, /\.\d{9}Z$/);
});

test.serial('--tail applies per task; task logs through the task id', async (t) => {
  // tail counts lines of both streams together, per task
  const lines = await allLines(['service', 'logs', '--tail', '1', svc]);
  t.is(lines.length, 2, lines.join('\n'));
  t.deepEqual(lines.map((l) => /@(\S+)/.exec(l)?.[1]).sort(), [mgr.hostname, w1.hostname].sort());
  const taskId = (await ok(mgr, ['service', 'ps', '-q', '--no-trunc', '--filter', 'desired-state=running', svc])).trim().split('\n')
    .find(Boolean)!;
  const one = await allLines(['service', 'logs', '--tail', '2', taskId]);
  t.is(one.length, 2, one.join('\n'));
  t.true(one.every((l) => new RegExp(`^${svc}\\.\\S+@\\S+\\s+\\| (out|err)-`).test(l)), one.join('\n'));
});

test.serial('the raw API answers stdcopy frames with the swarm details', async (t) => {
  const body = await rawGet(mgr.socket, `/v1.41/services/${svc}/logs?details=1&stdout=1&stderr=1&tail=2`);
  const fs = frames(body);
  t.true(fs.length >= 4, `${fs.length} frames`);
  for (const f of fs) {
    t.true(f.stream === 1 || f.stream === 2);
    t.regex(f.text, /^com\.docker\.swarm\.node\.id=\w+,com\.docker\.swarm\.service\.id=\w+,com\.docker\.swarm\.task\.id=\w+ (out|err)-\d+\n$/);
  }
  const bad = await rawGet(mgr.socket, `/v1.41/services/${svc}/logs`);
  t.regex(bad.toString(), /you must choose at least one stream/);
});

test.serial('follow streams new lines from both nodes until the client goes away', async (t) => {
  const child = spawn(DOCKER_CLI, ['-H', mgr.host, 'service', 'logs', '-f', '--tail', '0', svc], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  await waitFor('new lines from both nodes', () => out.includes(`@${mgr.hostname}`) && out.includes(`@${w1.hostname}`), { timeoutMs: 30_000 });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  // the service keeps running and later requests are served (uploads from the worker ended cleanly)
  t.is((await allLines(['service', 'logs', '--tail', '1', svc])).length, 2);
});
