// A real Prometheus (Debian's binary) with the shipped configuration
// (deploy/prometheus: file_sd targets, alerting rules) scrapes three real
// agents (a manager and two joined workers); its query API returns the
// running-task count of a 3-replica service, and every target is up.
// deploy/prometheus/targets.sh lists the same three nodes.
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

const PROM_DIR = fileURLToPath(new URL('../../../deploy/prometheus/', import.meta.url));
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SERVICE = `prom-${Math.random().toString(36).slice(2, 7)}`;

let agents: TestAgent[] = [];
let prom: ChildProcess | undefined;
let promUrl = '';
let dir = '';
let promLog = '';

async function ok(a: TestAgent, args: string[]): Promise<string> {
  const r = await a.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

interface Sample { metric: Record<string, string>; value: [number, string] }
async function query(q: string): Promise<Sample[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(5000) });
  const body = await res.json() as { status: string; data: { resultType: string; result: Sample[] } };
  if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`);
  return body.data.result;
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-prometheus-'));
  const addr = `127.0.0.1:${await freePort()}`;
  const mgr = await startAgent('pmgr', ['--listen-addr', addr]);
  agents.push(mgr);
  agents.push(await startAgent('pw1'), await startAgent('pw2'));
  const token = /--token (\S+)/.exec(await ok(mgr, ['swarm', 'init', '--advertise-addr', addr]))![1]!;
  for (const w of agents.slice(1)) await ok(w, ['swarm', 'join', '--token', token, addr]);

  // the shipped configuration, scraping every second, with this lab as its targets file
  const shipped = readFileSync(join(PROM_DIR, 'prometheus.yml'), 'utf8');
  const config = shipped.replace(/scrape_interval: 15s/, 'scrape_interval: 1s').replace(/evaluation_interval: 15s/, 'evaluation_interval: 1s');
  if (!config.includes('scrape_interval: 1s') || !config.includes('- targets.json')) throw new Error('deploy/prometheus/prometheus.yml changed shape; update this test');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  copyFileSync(join(PROM_DIR, 'alerts.yml'), join(dir, 'alerts.yml'));
  writeFileSync(join(dir, 'targets.json'), JSON.stringify(agents.map((a, i) => ({
    targets: [`127.0.0.1:${a.metricsPort}`], labels: { node: a.hostname, role: i === 0 ? 'manager' : 'worker' },
  }))));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prom = spawn('/usr/bin/prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PATH: SYSTEM_PATH } });
  prom.stderr!.on('data', (d) => { promLog = (promLog + d).slice(-10_000); });
  await waitFor('prometheus ready', async () => {
    if (prom!.exitCode !== null) throw new Error(`prometheus exited ${prom!.exitCode}: ${promLog}`);
    return (await fetch(`${promUrl}/-/ready`, { signal: AbortSignal.timeout(2000) })).ok;
  }, { timeoutMs: 30_000 });
  // every agent scraped once before the service exists (the store-change
  // counter starts counting at an agent's first scrape)
  await waitFor('a first scrape of every target', async () => (await query('up{job="shoal"} == 1')).length === 3, { timeoutMs: 30_000 });
});

test.after.always(async () => {
  if (prom && prom.exitCode === null && !prom.signalCode) {
    const exited = new Promise((r) => prom!.once('exit', r));
    prom.kill('SIGKILL');
    await exited;
  }
  await Promise.all(agents.map((a) => a.cleanup()));
  agents = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.serial('Prometheus scrapes all three agents and counts the running tasks of a 3-replica service', async (t) => {
  const [mgr] = agents;
  await ok(mgr!, ['service', 'create', '--detach', '--replicas', '3', '--name', SERVICE, '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('3/3 in service ls', async () => (await ok(mgr!, ['service', 'ls', '--filter', `name=${SERVICE}`, '--format', '{{.Replicas}}'])).trim() === '3/3', { timeoutMs: 60_000 });

  const running = await waitFor('sum(shoal_service_tasks_running) = 3 in Prometheus', async () => {
    const r = await query('sum(shoal_service_tasks_running)');
    return r[0]?.value[1] === '3' ? r : undefined;
  }, { timeoutMs: 60_000 });
  t.is(running.length, 1);
  const perService = await query(`shoal_service_tasks_running{service="${SERVICE}"}`);
  t.is(perService.length, 1, 'only the manager reports services');
  t.is(perService[0]!.metric.node, mgr!.hostname, 'targets carry the labels of the targets file');
  t.is(perService[0]!.metric.role, 'manager');

  const up = await waitFor('up = 1 for every target', async () => {
    const r = await query('up{job="shoal"}');
    return r.length === 3 && r.every((s) => s.value[1] === '1') ? r : undefined;
  }, { timeoutMs: 30_000 });
  t.deepEqual(up.map((s) => s.metric.node).sort(), agents.map((a) => a.hostname).sort());

  const ready = await waitFor('3 ready nodes', async () => {
    const r = await query('sum(shoal_nodes{state="ready"})');
    return r[0]?.value[1] === '3' ? r : undefined;
  }, { timeoutMs: 30_000 });
  t.truthy(ready);
  const managers = await query('sum(shoal_manager)');
  t.is(managers[0]?.value[1], '1');
});

test.serial('the alerting rules load into Prometheus', async (t) => {
  const res = await fetch(`${promUrl}/api/v1/rules`, { signal: AbortSignal.timeout(5000) });
  const body = await res.json() as { data: { groups: Array<{ name: string; rules: Array<{ name: string; health: string }> }> } };
  const rules = body.data.groups.flatMap((g) => g.rules);
  t.true(rules.length >= 5);
  for (const name of ['ShoalAgentDown', 'ShoalNodeDown', 'ShoalServiceBelowDesired', 'ShoalDNSErrors', 'ShoalMeshBackendErrors']) {
    t.truthy(rules.find((r) => r.name === name), name);
  }
  await waitFor('every rule evaluated without error', async () => {
    const again = await (await fetch(`${promUrl}/api/v1/rules`, { signal: AbortSignal.timeout(5000) })).json() as typeof body;
    return again.data.groups.flatMap((g) => g.rules).every((r) => r.health === 'ok');
  }, { timeoutMs: 30_000 });
});

/** metrics the rules and dashboard use that the agent does not export yet (DNS and mesh modules) */
const PENDING = new Set(['shoal_dns_queries_total', 'shoal_mesh_backend_errors_total']);

test.serial('every shoal_ metric the alerts and the dashboard use is scraped (or pending in DNS/mesh)', async (t) => {
  const scraped = new Set((await query('count by (__name__) ({__name__=~"shoal_.+"})')).map((s) => s.metric.__name__!));
  t.true(scraped.has('shoal_service_tasks_running'));
  const used = (file: string) => new Set([...readFileSync(file, 'utf8').matchAll(/\bshoal_[a-z0-9_]+/g)].map((m) => m[0]));
  const dashboard = fileURLToPath(new URL('../../../deploy/grafana/shoal-dashboard.json', import.meta.url));
  for (const file of [join(PROM_DIR, 'alerts.yml'), dashboard]) {
    const missing = [...used(file)].filter((m) => !scraped.has(m) && !PENDING.has(m));
    t.deepEqual(missing, [], file);
  }
});

test.serial('targets.sh lists every node of the swarm for file_sd', async (t) => {
  const [mgr] = agents;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(join(PROM_DIR, 'targets.sh'), [], { env: { ...process.env, PATH: SYSTEM_PATH, DOCKER_HOST: mgr!.host, METRICS_PORT: '9999' }, timeout: 30_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
  });
  const groups = JSON.parse(out) as Array<{ targets: string[]; labels: { node: string; role: string } }>;
  t.deepEqual(groups.map((g) => g.labels.node).sort(), agents.map((a) => a.hostname).sort());
  t.is(groups.find((g) => g.labels.node === mgr!.hostname)?.labels.role, 'manager');
  t.true(groups.every((g) => g.targets.length === 1 && /^[\d.]+:9999$/.test(g.targets[0]!)), out);
  await ok(mgr!, ['service', 'rm', SERVICE]);
});
