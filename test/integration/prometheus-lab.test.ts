// A real Prometheus inside a lab host scrapes every host of a 3-host lab
// cluster over the lab's underlay (the shipped configuration, file discovery):
// every target is up and the query API returns the running-task count.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { waitFor } from '../helpers/wait.js';

const PROM_DIR = fileURLToPath(new URL('../../../deploy/prometheus/', import.meta.url));
let c: LabCluster;
let prom: ChildProcess | undefined;
let dir = '';
let promUrl = '';

/** the query API, asked from inside the lab (the root namespace has no lab address) */
async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const { stdout } = await c.lab.exec(c.lab.hosts[0], ['/usr/bin/wget', '-qO-', '-T', '5', `${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`]);
  const body = JSON.parse(stdout) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(stdout);
  return body.data.result;
}

test.before(async () => {
  c = await createLabCluster(3);
  dir = mkdtempSync(join(tmpdir(), 'shoal-prom-lab-'));
  const config = readFileSync(join(PROM_DIR, 'prometheus.yml'), 'utf8').replace(/scrape_interval: 15s/, 'scrape_interval: 1s').replace(/evaluation_interval: 15s/, 'evaluation_interval: 1s');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  writeFileSync(join(dir, 'alerts.yml'), readFileSync(join(PROM_DIR, 'alerts.yml')));
  writeFileSync(join(dir, 'targets.json'), JSON.stringify(c.metricsTargets.map((t, i) => ({ targets: [t], labels: { node: c.agents[i].hostname } }))));
  promUrl = `http://${c.lab.hosts[0].addr}:9090`;
  prom = spawn('/usr/sbin/ip', ['netns', 'exec', c.lab.hosts[0].name, '/usr/bin/prometheus', `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${c.lab.hosts[0].addr}:9090`, '--log.level=warn'], { cwd: dir, stdio: 'ignore' });
});

test.after.always(async () => {
  if (prom && prom.exitCode === null) {
    const exited = new Promise((r) => prom!.once('exit', r));
    prom.kill('SIGKILL');
    await exited;
  }
  await c?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.serial('every lab host is scraped and the query API counts the running tasks', async (t) => {
  await waitFor('3 targets up', async () => (await query('up{job="shoal"} == 1')).length === 3, { timeoutMs: 60_000 });
  await c.ok(['service', 'create', '--detach', '--name', 'promlab', '--replicas', '3', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  const running = await waitFor('3 running in Prometheus', async () => {
    const r = await query('sum(shoal_service_tasks_running{service="promlab"})');
    return r[0]?.value[1] === '3' ? r : undefined;
  }, { timeoutMs: 60_000 });
  t.is(running[0].value[1], '3');
  const nodes = await query('sum(shoal_nodes{state="ready"})');
  t.is(nodes.find(() => true)?.value[1], '3');
  await c.ok(['service', 'rm', 'promlab']);
});
