// Secrets and configs with the stock docker CLI on a one-node swarm: CRUD
// with Docker's words, a service that mounts them (default target, custom
// target with uid/gid/mode, a config file), the secret readable in the task
// and found nowhere else: not in the store files, the agent's log output
// (debug level), `secret inspect`, `service inspect` or `docker inspect`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test from 'ava';
import { docker, hostDocker, removeNodeContainers } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

/** an agent whose log output (stdout, debug level) the test reads */
interface LoggedAgent { dir: string; socket: string; proc: ChildProcess; nodeId(): string | undefined; docker: (args: string[], o?: { input?: string }) => ReturnType<typeof docker> }

async function startLoggedAgent(onLog: (s: string) => void): Promise<LoggedAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-sec-'));
  const socket = join(dir, 'docker.sock');
  const main = resolve(new URL('../../agent/cli/main.js', import.meta.url).pathname);
  const proc = spawn(process.execPath, [main, 'agent', '--state-dir', join(dir, 'state'), '--api-socket', socket, '--hostname', `sec-${sfx}`,
    '--listen-addr', '127.0.0.1:0', '--metrics-addr', `127.0.0.1:${await freePort()}`, '--data-plane', 'off'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHOAL_LOG_LEVEL: 'debug' } });
  proc.stdout?.on('data', (d) => onLog(String(d)));
  proc.stderr?.on('data', (d) => onLog(String(d)));
  const la: LoggedAgent = {
    dir, socket, proc,
    nodeId: () => { const p = join(dir, 'state', 'state.json'); return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as { nodeId: string }).nodeId : undefined; },
    docker: (args, o) => docker(['-H', `unix://${socket}`, ...args], o),
  };
  await waitFor('agent API', async () => existsSync(socket) && (await la.docker(['version'])).code === 0, { timeoutMs: 20_000 });
  return la;
}

const sfx = Math.random().toString(36).slice(2, 7);
const SECRET = `s3cr3t-${sfx}-${Math.random().toString(36).slice(2, 12)}`;
const secret = `db_pass_${sfx}`;
const config = `app_conf_${sfx}`;
const svc = `sec${sfx}`;
let a: LoggedAgent;
let nodeId: string | undefined;
let agentLog = '';

async function ok(args: string[], input?: string): Promise<string> {
  const r = await a.docker(args, input === undefined ? undefined : { input });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function api(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath: a.socket, method, path, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

test.before(async () => {
  a = await startLoggedAgent((s) => { agentLog += s; });
  await ok(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  nodeId = a.nodeId();
});

test.after.always(async () => {
  if (!a) return;
  await a.docker(['service', 'rm', svc]).catch(() => undefined);
  if (a.proc.exitCode === null) {
    const exited = new Promise((r) => a.proc.once('exit', r));
    a.proc.kill('SIGKILL');
    await exited;
  }
  if (nodeId) await removeNodeContainers(nodeId);
  if (nodeId) rmSync(join(process.env.SHOAL_SECRETS_DIR || '/run/shoal/secrets', nodeId), { recursive: true, force: true });
  rmSync(a.dir, { recursive: true, force: true });
});

test.serial('create, list, inspect (no data), update labels only, name conflicts', async (t) => {
  const id = (await ok(['secret', 'create', '--label', 'tier=db', secret, '-'], SECRET)).trim();
  t.regex(id, /^\w{25}$/);
  t.regex(await ok(['secret', 'ls', '--filter', 'label=tier=db', '--format', '{{.Name}}']), new RegExp(secret));
  const inspect = await ok(['secret', 'inspect', secret]);
  t.regex(inspect, new RegExp(`"Name": "${secret}"`));
  t.false(inspect.includes(SECRET));
  t.notRegex(inspect, /"Data"|Sealed/);
  const dup = await a.docker(['secret', 'create', secret, '-'], { input: 'x' });
  t.regex(dup.stderr, /rpc error: code = AlreadyExists desc = secret .* already exists/);
  const bad = await a.docker(['secret', 'create', '-bad-', '-'], { input: 'x' });
  t.not(bad.code, 0);
  const empty = await api('POST', '/v1.41/secrets/create', { Name: `e${sfx}`, Data: '' });
  t.is(empty.status, 400);
  t.regex(empty.text, /secret data must be larger than 0/);

  const cur = JSON.parse((await api('GET', `/v1.41/secrets/${id}`)).text) as { Version: { Index: number }; Spec: { Name: string } };
  const relabel = await api('POST', `/v1.41/secrets/${id}/update?version=${cur.Version.Index}`, { Name: secret, Labels: { tier: 'db', x: 'y' } });
  t.is(relabel.status, 200, relabel.text);
  const after = JSON.parse((await api('GET', `/v1.41/secrets/${secret}`)).text) as { Spec: { Labels: Record<string, string> }; Version: { Index: number } };
  t.deepEqual(after.Spec.Labels, { tier: 'db', x: 'y' });
  const data = await api('POST', `/v1.41/secrets/${id}/update?version=${after.Version.Index}`, { Name: secret, Data: Buffer.from('other').toString('base64') });
  t.is(data.status, 400);
  t.regex(data.text, /only updates to Labels are allowed/);
  const stale = await api('POST', `/v1.41/secrets/${id}/update?version=${cur.Version.Index}`, { Name: secret, Labels: {} });
  t.regex(stale.text, /update out of sequence/);

  await ok(['config', 'create', config, '-'], 'listen=8080\n');
  t.regex(await ok(['config', 'inspect', '--format', '{{printf "%s" .Spec.Data}}', config]), /listen=8080/);
});

test.serial('a service mounts them: default and custom targets, uid/gid/mode; rm refused while in use', async (t) => {
  await ok(['service', 'create', '--detach', '--name', svc, '--stop-grace-period', '1s',
    '--secret', secret, '--secret', `source=${secret},target=/etc/pw,uid=1000,gid=1001,mode=0400`,
    '--config', `src=${config},target=/etc/app.conf`, 'local/busybox:1', 'sleep', '3600']);
  const ctr = await waitFor('task container running', async () => {
    const r = await hostDocker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${svc}`]);
    return r.stdout.trim().split('\n').find(Boolean);
  }, { timeoutMs: 60_000 });
  t.is((await hostDocker(['exec', ctr, 'cat', '/run/secrets/' + secret])).stdout, SECRET);
  t.is((await hostDocker(['exec', ctr, 'cat', '/etc/pw'])).stdout, SECRET);
  t.is((await hostDocker(['exec', ctr, 'stat', '-c', '%u %g %a', '/etc/pw'])).stdout.trim(), '1000 1001 400');
  t.is((await hostDocker(['exec', ctr, 'stat', '-c', '%a', `/run/secrets/${secret}`])).stdout.trim(), '444');
  t.is((await hostDocker(['exec', ctr, 'cat', '/etc/app.conf'])).stdout, 'listen=8080\n');
  const write = await hostDocker(['exec', ctr, 'sh', '-c', `echo x > /run/secrets/${secret}`]);
  t.not(write.code, 0, 'secret files are read-only');

  const rm = await a.docker(['secret', 'rm', secret]);
  t.not(rm.code, 0);
  t.regex(rm.stderr, new RegExp(`secret '${secret}' is in use by the following service: ${svc}`));
  const rmc = await a.docker(['config', 'rm', config]);
  t.regex(rmc.stderr, new RegExp(`config '${config}' is in use by the following service: ${svc}`));

  // the secret's content appears nowhere else
  const storeFiles = filesUnder(join(a.dir, 'state', 'store'));
  t.true(storeFiles.length > 0);
  for (const f of filesUnder(join(a.dir, 'state'))) t.false(readFileSync(f).includes(SECRET), `secret found in ${f}`);
  t.true(existsSync(join(a.dir, 'state', 'secrets', 'data.key')));
  t.is(statSync(join(a.dir, 'state', 'secrets', 'data.key')).mode & 0o777, 0o600);
  t.true(agentLog.length > 0, 'the agent logged at debug level');
  t.false(agentLog.includes(SECRET), 'not in the agent log');
  t.false(agentLog.includes(Buffer.from(SECRET).toString('base64')), 'not in the agent log as base64');
  for (const args of [['service', 'inspect', svc], ['secret', 'inspect', secret], ['secret', 'ls']]) t.false((await ok(args)).includes(SECRET));
  t.false((await hostDocker(['inspect', ctr])).stdout.includes(SECRET));
  t.false((await api('GET', '/v1.41/secrets')).text.includes(Buffer.from(SECRET).toString('base64')));
});

test.serial('removing the service removes the task files; then the secret and config can go', async (t) => {
  const root = process.env.SHOAL_SECRETS_DIR || '/run/shoal/secrets';
  const taskIds = (await ok(['service', 'ps', '-q', '--no-trunc', svc])).trim().split('\n').filter(Boolean);
  t.true(taskIds.some((id) => existsSync(join(root, nodeId!, id))));
  await ok(['service', 'rm', svc]);
  await waitFor('task files removed', () => taskIds.every((id) => !existsSync(join(root, nodeId!, id))), { timeoutMs: 60_000 });
  await ok(['secret', 'rm', secret]);
  await ok(['config', 'rm', config]);
  t.is((await ok(['secret', 'ls', '-q'])).trim(), '');
  const gone = await a.docker(['secret', 'inspect', secret]);
  t.regex(gone.stderr, /not found/i);
});
