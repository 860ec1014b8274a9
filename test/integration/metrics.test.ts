// Metrics reflect reality: after create, scale and a killed task the
// running-task gauge equals what dockerd runs; promtool accepts the exposition.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { hostDocker, nodeContainers } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

let agent: TestAgent;
test.before(async () => { agent = await startAgent('metrics'); });
test.after.always(async () => { await agent?.cleanup(); });

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${agent.metricsPort}/metrics`);
  return res.text();
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}

async function ok(args: string[]): Promise<string> {
  const r = await agent.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test.serial('gauges follow create, scale and a killed task; promtool accepts the exposition', async (t) => {
  t.is(value(await scrape(), 'shoal_manager'), 0);
  await ok(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  await ok(['service', 'create', '--detach', '--replicas', '2', '--name', 'm', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  const series = 'shoal_service_tasks_running{service="m",mode="replicated"}';
  await waitFor('2 running in metrics', async () => value(await scrape(), series) === 2);
  await ok(['service', 'scale', '--detach', 'm=3']);
  await waitFor('3 running in metrics', async () => value(await scrape(), series) === 3);
  t.is((await nodeContainers(agent.nodeId()!)).length, 3);
  const victim = (await nodeContainers(agent.nodeId()!))[0];
  await hostDocker(['kill', victim]);
  await waitFor('a failed task counted', async () => (value(await scrape(), 'shoal_tasks{state="failed",desired_state="shutdown"}') ?? 0) >= 1);
  await waitFor('back to 3', async () => value(await scrape(), series) === 3 && (await nodeContainers(agent.nodeId()!)).length === 3);
  const text = await scrape();
  t.is(value(text, 'shoal_service_tasks_desired{service="m",mode="replicated"}'), 3);
  t.is(value(text, 'shoal_nodes{state="ready",availability="active",role="manager"}'), 1);
  t.true((value(text, 'shoal_store_changes_total{kind="tasks",action="update"}') ?? 0) > 0);
  const dir = mkdtempSync(join(tmpdir(), 'shoal-promtool-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'm.txt'), text);
  const out = execFileSync('sh', ['-c', `promtool check metrics < ${join(dir, 'm.txt')} 2>&1; echo rc=$?`]).toString();
  t.regex(out, /rc=0$/m, out);
  await ok(['service', 'rm', 'm']);
});
