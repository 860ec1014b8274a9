// Benchmark on a 2-host lab cluster (real agents): dnsperf for N seconds
// against one node's gateway DNS (service names: NAME, tasks.NAME,
// NAME.NETWORK, task names) next to dnsmasq serving the same records in the
// same host namespace, in the same run: queries/s and p50/p99 latency (from
// dnsperf -v). Then how long a task's death takes to leave every node's
// answers (container killed → tasks.NAME without it on both gateways).
// Run: node dist/test/bench/dns-cluster.js [seconds]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { hostDocker } from '../helpers/docker.js';
import { dig, subnetOf, waitRunning } from '../helpers/net-cluster.js';
import { inHost, percentile, withCleanup } from '../helpers/net-bench.js';
import { waitFor } from '../helpers/wait.js';

const SECS = Number(process.argv[2] ?? 10);
let c: LabCluster | undefined;
let dnsmasq: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'shoal-dnsbench-'));

async function dnsperf(ns: string, server: string, port: number, file: string, rate?: number) {
  const out = await inHost(ns, ['dnsperf', '-s', server, '-p', String(port), '-d', file, '-l', String(SECS), '-v', ...(rate ? ['-Q', String(rate)] : [])], (SECS + 60) * 1000);
  const lat = [...out.matchAll(/^> \w+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1]);
  const lost = /Queries lost:\s+(\d+)/.exec(out)?.[1];
  const codes = /Response codes:\s+(.*)/.exec(out)?.[1];
  return { qps, p50: percentile(lat, 50), p99: percentile(lat, 99), lost, codes };
}

await withCleanup(async () => {
  c = await createLabCluster(2);
  const cl = c;
  const h1 = cl.lab.hosts[0]!;
  await cl.ok(['network', 'create', '-d', 'overlay', 'appnet']);
  await cl.ok(['service', 'create', '--detach', '--name', 'web', '--network', 'appnet', '--replicas', '3', '--stop-grace-period', '1s', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  const tasks = await waitRunning(cl, 'web', 'appnet', 3);
  const { gateway } = await subnetOf(cl, 'appnet');
  const vip = (JSON.parse(await cl.ok(['service', 'inspect', 'web']))[0].Endpoint.VirtualIPs as { Addr: string }[]).map((v) => v.Addr.split('/')[0]!).find((a) => a.startsWith(gateway.split('.').slice(0, 3).join('.')))!;
  const slots = JSON.parse(await cl.ok(['inspect', '--type', 'task', ...tasks.map((x) => x.id)])) as { ID: string; Slot: number }[];
  const records: [string, string][] = [['web', vip], ['web.appnet', vip], ...tasks.map((x) => ['tasks.web', x.addr] as [string, string])];
  for (const s of slots) records.push([`web.${s.Slot}.${s.ID}`, tasks.find((x) => x.id === s.ID)!.addr]);
  const names = [...new Set(records.map(([n]) => n))];
  const file = join(dir, 'queries.txt');
  writeFileSync(file, names.map((n) => `${n} A`).join('\n') + '\n');
  // check both servers give the same answers before measuring
  const port = 5353;
  dnsmasq = spawn('/usr/sbin/ip', ['netns', 'exec', h1.name, '/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts',
    '--bind-interfaces', `--listen-address=${h1.addr}`, `--port=${port}`, '--pid-file=', ...records.map(([n, a]) => `--host-record=${n},${a}`)], { stdio: 'ignore' });
  for (const n of names) {
    const ours = await waitFor(`our answer for ${n}`, async () => { const r = await dig(cl, h1, gateway, n); return r.answers.length ? r.answers : undefined; });
    const theirs = await waitFor(`dnsmasq answer for ${n}`, async () => {
      const r = await inHost(h1.name, ['dig', `@${h1.addr}`, '-p', String(port), n, '+short']).catch(() => '');
      return r.trim() ? r.trim().split('\n').sort() : undefined;
    }, { timeoutMs: 10_000 });
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) throw new Error(`${n}: ours ${ours} dnsmasq ${theirs}`);
  }
  const ours = await dnsperf(h1.name, gateway, 53, file);
  const theirs = await dnsperf(h1.name, h1.addr, port, file);
  const fmt = (r: typeof ours) => `${Math.round(r.qps)} q/s, p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, lost ${r.lost} (${r.codes})`;
  console.log(`dnsperf ${SECS}s, ${names.length} names, 100 in flight, from the host namespace:`);
  console.log(`  shoal (gateway ${gateway}): ${fmt(ours)}`);
  console.log(`  dnsmasq (same records):  ${fmt(theirs)}`);
  console.log(`  ratio shoal/dnsmasq: ${(ours.qps / theirs.qps).toFixed(2)}`);
  const rate = 10_000;
  const oursQ = await dnsperf(h1.name, gateway, 53, file, rate);
  const theirsQ = await dnsperf(h1.name, h1.addr, port, file, rate);
  console.log(`at a fixed ${rate} q/s (latency without queueing at the client):`);
  console.log(`  shoal: ${fmt(oursQ)}`);
  console.log(`  dnsmasq: ${fmt(theirsQ)}`);

  // a task dies: time until every node's DNS stops answering it
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    const now = await waitRunning(cl, 'web', 'appnet', 3);
    const victim = now[i % now.length]!;
    await hostDocker(['kill', victim.container!]);
    const per = await Promise.all(cl.lab.hosts.map((h) => waitFor('answer without the dead task', async () =>
      !(await dig(cl, h, gateway, 'tasks.web')).answers.includes(victim.addr) ? Date.now() : undefined, { intervalMs: 10, timeoutMs: 15_000 })));
    const died = Date.parse((await hostDocker(['inspect', '-f', '{{.State.FinishedAt}}', victim.container!])).stdout.trim());
    delays.push(Math.max(...per) - died);
  }
  console.log(`container died → gone from tasks.web on both nodes, ms: ${delays.join(', ')} (median ${percentile(delays, 50)}; from the container's FinishedAt, polling with dig every ~10-30 ms)`);
}, async () => {
  dnsmasq?.kill('SIGKILL');
  await c?.destroy();
  rmSync(dir, { recursive: true, force: true });
});
