// Benchmark on a 2-host lab cluster (real agents): wrk from inside a client
// task's network namespace (nsenter) to an nginx task on the other host,
// through the service VIP (nftables DNAT in the client's namespace) vs
// straight to the task's overlay address, alternating 3 times, in one run; prints
// requests/s, p99 latency and the VIP/direct ratio. A second line does the
// same with 2 replicas behind the VIP (one per host) for context.
// Run: node dist/test/bench/vip.js [seconds]
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { containerPid, hostIndexOf, subnetOf, taskAddrs, waitRunning } from '../helpers/net-cluster.js';
import { inPid, withCleanup } from '../helpers/net-bench.js';
import { waitFor } from '../helpers/wait.js';

const SECS = Number(process.argv[2] ?? 6);
let c: LabCluster | undefined;

async function wrk(pid: number, url: string): Promise<{ rps: number; p99: string; errors: string }> {
  const out = await inPid(pid, ['/usr/bin/wrk', '-t2', '-c32', `-d${SECS}s`, '--latency', url], (SECS + 30) * 1000);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p99: /99%\s+(\S+)/.exec(out)?.[1] ?? '?',
    errors: /Non-2xx.*|Socket errors.*/.exec(out)?.[0] ?? 'none',
  };
}

await withCleanup(async () => {
  c = await createLabCluster(2);
  const cl = c;
  const [n1, n2] = cl.agents;
  await cl.ok(['network', 'create', '-d', 'overlay', 'benchnet']);
  await cl.ok(['service', 'create', '--detach', '--name', 'ngx', '--network', 'benchnet', '--constraint', `node.hostname==${n2!.hostname}`, '--stop-grace-period', '1s', 'local/nginx:1']);
  await cl.ok(['service', 'create', '--detach', '--name', 'client', '--network', 'benchnet', '--constraint', `node.hostname==${n1!.hostname}`, '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  const [backend] = await waitRunning(cl, 'ngx', 'benchnet', 1);
  const [client] = await waitRunning(cl, 'client', 'benchnet', 1);
  const pid = await containerPid(client!.container!);
  const { gateway } = await subnetOf(cl, 'benchnet');
  const vipOf = async () => (JSON.parse(await cl.ok(['service', 'inspect', 'ngx']))[0].Endpoint.VirtualIPs as { Addr: string }[]).map((v) => v.Addr.split('/')[0]!).find((a) => a.startsWith(gateway.split('.').slice(0, 3).join('.')))!;
  const vip = await vipOf();
  await waitFor('VIP answers in the client', async () => { await inPid(pid, ['/usr/bin/wrk', '-t1', '-c1', '-d1s', `http://${vip}/`], 20_000); return true; });
  const direct: number[] = [];
  const viaVip: number[] = [];
  let last = '';
  for (let round = 0; round < 3; round++) {
    const d = await wrk(pid, `http://${backend!.addr}/`);
    const v = await wrk(pid, `http://${vip}/`);
    direct.push(d.rps);
    viaVip.push(v.rps);
    last = `p99 direct ${d.p99}, VIP ${v.p99}; errors direct ${d.errors}, VIP ${v.errors}`;
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`wrk ${SECS}s, 32 connections, client task on host 1 → nginx task on host 2 over the overlay:`);
  console.log(`  direct to ${backend!.addr}: ${direct.map(Math.round).join('/')} req/s; via VIP ${vip}: ${viaVip.map(Math.round).join('/')} req/s; ratio of medians ${(median(viaVip) / median(direct)).toFixed(2)}`);
  console.log(`  ${last}`);

  await cl.ok(['service', 'update', '--detach', '--constraint-rm', `node.hostname==${n2!.hostname}`, '--replicas', '2', '--replicas-max-per-node', '1', 'ngx']);
  await waitFor('2 ngx replicas on both hosts', async () => {
    const ts = await taskAddrs(cl, 'ngx', 'benchnet');
    return ts.length === 2 && ts.every((x) => x.state === 'running') && new Set(ts.map((x) => hostIndexOf(cl, x.nodeId))).size === 2;
  }, { timeoutMs: 90_000 });
  await new Promise((r) => setTimeout(r, 1000));
  const two = await wrk(pid, `http://${vip}/`);
  console.log(`  via VIP with 2 replicas (one local, one remote): ${Math.round(two.rps)} req/s, p99 ${two.p99}, errors ${two.errors}`);
}, async () => { await c?.destroy(); });
