// Benchmark of the overlay data path on a 2-host netns lab (prints figures, asserts nothing):
// 1. TCP throughput and mean RTT (iperf3) host-to-host over the underlay, over the overlay
//    (each host's own overlay address), and container-to-container over the overlay
//    (iperf3 run in the containers' network namespaces via nsenter: busybox has no iperf3);
// 2. container start -> reachable over the overlay from the other host (median, p90);
// 3. setPeers cost for 1,000 peers (program, no-op re-apply, clear).
// Run: node dist/test/bench/overlay.js [seconds per iperf3 run, default 4] [rounds, default 3]
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { macFromIPv4 } from '../../netd/ipam/index.js';
import { RemoteOverlayDriver, type Peer } from '../../netd/overlay/index.js';
import { createLab, type Lab, type LabHost } from '../helpers/lab.js';

const run = promisify(execFile);
const SECS = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.argv[3] ?? 3);
const NET = { id: 'bench', vni: 4200, subnet: '10.0.42.0/24', gateway: '10.0.42.1' };
const peer = (addr: string, host: LabHost): Peer => ({ addr, mac: macFromIPv4(addr), host: host.addr });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const now = () => performance.timeOrigin + performance.now();

const procs: ChildProcess[] = [];
const containers: string[] = [];

async function iperf(clientNs: string[], server: string): Promise<{ gbps: number; rttMs: number }> {
  const { stdout } = await run(clientNs[0]!, [...clientNs.slice(1), 'iperf3', '-c', server, '-t', String(SECS), '-J'], { timeout: (SECS + 30) * 1000, maxBuffer: 32 << 20 });
  const j = JSON.parse(stdout);
  return { gbps: j.end.sum_received.bits_per_second / 1e9, rttMs: (j.end.streams[0].sender.mean_rtt ?? 0) / 1000 };
}

async function container(lab: Lab, name: string): Promise<number> {
  const full = `${lab.prefix}-${name}`;
  containers.push(full);
  await run('docker', ['run', '-d', '--name', full, '--network', 'none', '--stop-timeout', '1', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  return Number((await run('docker', ['inspect', '-f', '{{.State.Pid}}', full])).stdout.trim());
}

/** A prober in a host namespace: given "ip port", answers the epoch ms of the first successful TCP connect. */
function prober(ns: string) {
  const src = `const net=require('net');const rl=require('readline').createInterface({input:process.stdin});
rl.on('line',l=>{const [ip,port]=l.split(' ');const end=Date.now()+10000;const tryc=()=>{const s=net.connect({host:ip,port:+port});
s.setTimeout(200,()=>s.destroy(new Error('t')));s.on('connect',()=>{const t=performance.timeOrigin+performance.now();s.destroy();console.log(String(t));});
s.on('error',()=>{s.destroy();if(Date.now()<end)setTimeout(tryc,5);else console.log('-1');});};tryc();});`;
  const p = spawn('/usr/sbin/ip', ['netns', 'exec', ns, process.execPath, '-e', src], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(p);
  const waiters: ((v: number) => void)[] = [];
  let buf = '';
  p.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { const line = buf.slice(0, i); buf = buf.slice(i + 1); waiters.shift()?.(Number(line)); }
  });
  return (ip: string, port: number) => new Promise<number>((r) => { waiters.push(r); p.stdin!.write(`${ip} ${port}\n`); });
}

async function main() {
  const lab = await createLab(2);
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const d1 = await RemoteOverlayDriver.spawn({ netns: h1.name });
  const d2 = await RemoteOverlayDriver.spawn({ netns: h2.name });
  try {
    await d1.ensureNetwork({ ...NET, nodeAddr: '10.0.42.2', underlayAddr: h1.addr });
    await d2.ensureNetwork({ ...NET, nodeAddr: '10.0.42.3', underlayAddr: h2.addr });
    const pA = await container(lab, 'ia');
    const pB = await container(lab, 'ib');
    await d1.attach({ pid: pA, vni: NET.vni, address: '10.0.42.10', prefixLen: 24, gateway: NET.gateway });
    await d2.attach({ pid: pB, vni: NET.vni, address: '10.0.42.11', prefixLen: 24, gateway: NET.gateway });
    await d1.setPeers(NET.vni, [peer('10.0.42.3', h2), peer('10.0.42.11', h2)]);
    await d2.setPeers(NET.vni, [peer('10.0.42.2', h1), peer('10.0.42.10', h1)]);

    // 1. throughput: servers on host 2 (underlay + overlay address) and in container B
    procs.push(spawn('/usr/sbin/ip', ['netns', 'exec', h2.name, 'iperf3', '-s'], { stdio: 'ignore' }));
    procs.push(spawn('/usr/bin/nsenter', ['-t', String(pB), '-n', 'iperf3', '-s'], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 500));
    const inH1 = ['/usr/sbin/ip', 'netns', 'exec', h1.name];
    const inA = ['/usr/bin/nsenter', '-t', String(pA), '-n'];
    const res: Record<string, { gbps: number; rttMs: number }[]> = { underlay: [], 'overlay host-host': [], 'overlay task-task': [] };
    for (let round = 0; round < ROUNDS; round++) {
      res.underlay!.push(await iperf(inH1, h2.addr));
      res['overlay host-host']!.push(await iperf(inH1, '10.0.42.3'));
      res['overlay task-task']!.push(await iperf(inA, '10.0.42.11'));
    }
    const base = median(res.underlay!.map((r) => r.gbps));
    console.log(`iperf3 TCP, ${SECS}s x ${ROUNDS} rounds interleaved, medians:`);
    for (const [k, v] of Object.entries(res)) {
      const g = median(v.map((r) => r.gbps));
      console.log(`  ${k.padEnd(18)} ${g.toFixed(2)} Gbit/s  ratio ${(g / base).toFixed(2)}  mean RTT ${median(v.map((r) => r.rttMs)).toFixed(3)} ms  (runs: ${v.map((r) => r.gbps.toFixed(2)).join(', ')})`);
    }

    // 2. container start -> reachable from host 1 over the overlay
    const probe = prober(h1.name);
    // eager: host 1 already probes while the task is being attached and announced (its ARP
    // attempts start before the peer exists); announced: host 1 starts once setPeers returned
    const fig = { eager: { total: [] as number[], netd: [] as number[] }, announced: { total: [] as number[], netd: [] as number[] } };
    const attachMs: number[] = [];
    const N = 16;
    for (let i = 0; i < N; i++) {
      const mode = i % 2 ? 'announced' : 'eager';
      const addr = `10.0.42.${100 + i}`;
      const t0 = now();
      const pid = await container(lab, `r${i}`);
      const t1 = now();
      const early = mode === 'eager' ? probe(addr, 80) : undefined;
      await d2.attach({ pid, vni: NET.vni, address: addr, prefixLen: 24, gateway: NET.gateway });
      const t2 = now();
      await d1.setPeers(NET.vni, [peer('10.0.42.3', h2), peer('10.0.42.11', h2), peer(addr, h2)]);
      const t3 = await (early ?? probe(addr, 80));
      if (t3 < 0) { console.log(`  ${addr}: not reachable within 10 s`); continue; }
      fig[mode].total.push(t3 - t0);
      fig[mode].netd.push(t3 - t1);
      attachMs.push(t2 - t1);
      await run('docker', ['rm', '-f', `${lab.prefix}-r${i}`]);
    }
    console.log(`container start -> reachable from the other host (${N / 2} runs each; attach alone: median ${median(attachMs).toFixed(1)} ms):`);
    for (const [mode, f] of Object.entries(fig)) {
      if (!f.total.length) continue;
      console.log(`  ${mode.padEnd(9)} docker run -> reachable: median ${median(f.total).toFixed(0)} ms p90 ${pct(f.total, 0.9).toFixed(0)} ms;` +
        ` container running -> reachable: median ${median(f.netd).toFixed(1)} ms p90 ${pct(f.netd, 0.9).toFixed(1)} ms`);
    }

    // 3. setPeers at scale (fake remote endpoints on a fake VTEP)
    const many: Peer[] = [];
    for (let i = 0; i < 1000; i++) many.push(peer(`10.1.${Math.floor(i / 250)}.${(i % 250) + 2}`, { name: '', addr: '10.231.0.200' }));
    await d1.ensureNetwork({ id: 'scale', vni: 4201, subnet: '10.1.0.0/16', gateway: '10.1.0.1', nodeAddr: '10.1.255.2', underlayAddr: h1.addr });
    let t = now();
    const diff = await d1.setPeers(4201, many);
    const tAdd = now() - t;
    t = now();
    const noop = await d1.setPeers(4201, many);
    const tNoop = now() - t;
    t = now();
    await d1.setPeers(4201, many.slice(0, 900));
    const tDel = now() - t;
    t = now();
    await d1.setPeers(4201, []);
    const tClear = now() - t;
    console.log(`setPeers, 1,000 peers (2,000 FDB + neighbour entries), through rtnetlink:`);
    console.log(`  program all ${tAdd.toFixed(0)} ms (+${diff.added}); re-apply unchanged ${tNoop.toFixed(0)} ms (+${noop.added}/-${noop.removed}); remove 100 ${tDel.toFixed(0)} ms; clear 900 ${tClear.toFixed(0)} ms`);
    await d1.removeNetwork(4201);
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    if (containers.length) await run('docker', ['rm', '-f', ...containers]).catch(() => undefined);
    await d1.close().catch(() => undefined);
    await d2.close().catch(() => undefined);
    await lab.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
