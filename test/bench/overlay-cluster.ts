// Benchmark on a 3-host lab cluster (real agents): iperf3 throughput and ping
// latency between two tasks on different hosts over the overlay vs between
// the same two hosts' underlay addresses, in one run; and the time from a
// task's container start to its being reachable (TCP) from every host,
// median over several new tasks. Run: node dist/test/bench/overlay-cluster.js [iperf-seconds] [samples]
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { hostDocker } from '../helpers/docker.js';
import { containerPid, hostIndexOf, runInHost, taskAddrs, waitRunning } from '../helpers/net-cluster.js';
import { inPid, percentile, sh, withCleanup } from '../helpers/net-bench.js';
import { waitFor } from '../helpers/wait.js';

const SECS = Number(process.argv[2] ?? 5);
const SAMPLES = Number(process.argv[3] ?? 7);
let c: LabCluster | undefined;

async function iperf(server: string[], client: string[], addr: string): Promise<number> {
  const srv = sh([...server, '/usr/bin/iperf3', '-s', '-1'], (SECS + 30) * 1000).catch(() => '');
  await new Promise((r) => setTimeout(r, 500));
  const out = JSON.parse(await sh([...client, '/usr/bin/iperf3', '-c', addr, '-t', String(SECS), '-J'], (SECS + 30) * 1000));
  await srv;
  return out.end.sum_received.bits_per_second / 1e9;
}

async function rtt(ns: string[], addr: string): Promise<number> {
  const out = await sh([...ns, '/usr/bin/busybox', 'ping', '-q', '-c', '50', '-i', '0.02', addr]);
  return Number(/= [\d.]+\/([\d.]+)\//.exec(out)?.[1]);
}

await withCleanup(async () => {
  c = await createLabCluster(3);
  const cl = c;
  const [h1, h2] = cl.lab.hosts;
  await cl.ok(['network', 'create', '-d', 'overlay', 'benchnet']);
  await cl.ok(['service', 'create', '--detach', '--name', 'perf', '--network', 'benchnet', '--mode', 'global', '--stop-grace-period', '1s', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  const perf = await waitRunning(cl, 'perf', 'benchnet', 3);
  const on = (i: number) => perf.find((p) => hostIndexOf(cl, p.nodeId) === i)!;
  const pidA = await containerPid(on(0).container!);
  const pidB = await containerPid(on(1).container!);
  const nsA = ['/usr/bin/nsenter', '-t', String(pidA), '-n'];
  const nsB = ['/usr/bin/nsenter', '-t', String(pidB), '-n'];
  const hostA = ['/usr/sbin/ip', 'netns', 'exec', h1!.name];
  const hostB = ['/usr/sbin/ip', 'netns', 'exec', h2!.name];
  // warm the path, then measure underlay and overlay back to back (twice, alternating)
  await inPid(pidB, ['/usr/bin/busybox', 'ping', '-c', '3', '-i', '0.2', on(0).addr]);
  const under: number[] = [];
  const over: number[] = [];
  for (let round = 0; round < 2; round++) {
    under.push(await iperf(hostA, hostB, h1!.addr));
    over.push(await iperf(nsA, nsB, on(0).addr));
  }
  const rttUnder = await rtt(hostB, h1!.addr);
  const rttOver = await rtt(nsB, on(0).addr);
  const u = Math.max(...under);
  const o = Math.max(...over);
  console.log(`iperf3 ${SECS}s, best of 2 (Gbit/s): underlay ${under.map((x) => x.toFixed(2)).join('/')}, overlay ${over.map((x) => x.toFixed(2)).join('/')}; ratio ${(o / u).toFixed(2)}`);
  console.log(`ping rtt avg (ms): underlay ${rttUnder.toFixed(3)}, overlay ${rttOver.toFixed(3)}`);

  // start → reachable from every host
  await cl.ok(['service', 'create', '--detach', '--name', 'probe', '--network', 'benchnet', '--replicas', '0', '--stop-grace-period', '1s', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  // the allocator hands out addresses next-fit after the last one: probe the next few before scaling,
  // so every probe runs before the container starts (a guess that missed is discarded)
  const ipInt = (a: string) => a.split('.').reduce((n, x) => n * 256 + Number(x), 0);
  const intIp = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  const svcVip = async () => (JSON.parse(await cl.ok(['service', 'inspect', 'probe']))[0].Endpoint.VirtualIPs as { Addr: string }[]).map((v) => v.Addr.split('/')[0]!);
  let last = Math.max(...[...perf.map((p) => p.addr), ...(await svcVip())].filter((a) => a.startsWith(on(0).addr.split('.').slice(0, 3).join('.'))).map(ipInt));
  const delays: number[] = [];
  let missed = 0;
  for (let i = 1; i <= SAMPLES; i++) {
    const candidates = [1, 2, 3, 4].map((k) => intIp(last + k));
    const probes = Promise.all(cl.lab.hosts.map((h) => runInHost(h, 'net-probe', ['80', '20000', ...candidates], 30_000).then((o) => JSON.parse(o) as { started: number; reached: Record<string, number | null> })));
    await new Promise((r) => setTimeout(r, 300)); // probes up (node start) before the task exists
    const before = new Set((await taskAddrs(cl, 'probe', 'benchnet')).map((x) => x.id));
    await cl.ok(['service', 'scale', '--detach', `probe=${i}`]);
    const fresh = await waitFor('the new task runs', async () => (await taskAddrs(cl, 'probe', 'benchnet')).find((x) => !before.has(x.id) && x.addr && x.container), { intervalMs: 50, timeoutMs: 30_000 });
    last = Math.max(last, ipInt(fresh.addr));
    const startedAt = Date.parse((await hostDocker(['inspect', '-f', '{{.State.StartedAt}}', fresh.container!])).stdout.trim());
    const got = await probes;
    const times = got.map((p) => (p.started < startedAt ? p.reached[fresh.addr] : undefined));
    if (times.some((x) => x == null)) { missed++; continue; }
    delays.push(Math.max(...(times as number[])) - startedAt);
  }
  console.log(`container start → reachable (TCP) from all 3 hosts, ms: median ${percentile(delays, 50)}, min ${Math.min(...delays)}, max ${Math.max(...delays)} (n=${delays.length}${missed ? `, ${missed} discarded: address not guessed or probe late` : ''})`);
}, async () => { await c?.destroy(); });

