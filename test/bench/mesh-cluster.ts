// Benchmark (issue 6) on a real 3-host lab: wrk in host 3's namespace against
// the same two local/nginx:1 tasks (on hosts 1 and 2, over the ingress
// overlay) by four paths, interleaved over several rounds in one run:
// straight to a task address, the mesh on host 3 in TCP mode, the mesh in
// HTTP mode (a label-only update switches the same service and tasks), and
// Debian's nginx as a reverse proxy in host 3's namespace. Prints req/s,
// p50/p99, the ratios the issue sets targets for, and the CPU (in cores) the
// mesh (the agent process on host 3) and the nginx proxy used.
// Run: node dist/test/bench/mesh-cluster.js [seconds] [connections] [rounds]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { nginxConf, wrkUrl, type MeshBenchRow } from './mesh.js';

const TICK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;

/** CPU seconds (user + system) a process has used */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      return Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === pid;
    } catch {
      return false;
    }
  });
}

export interface ClusterBenchRow extends MeshBenchRow { proxyCores?: number }

export async function runClusterMeshBench(seconds = 5, conns = 50, rounds = 3): Promise<ClusterBenchRow[]> {
  let c: LabCluster | undefined;
  let nginx: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'shoal-meshbench-lab-'));
  try {
    c = await createLabCluster(3);
    const cl = c;
    const entry = cl.lab.hosts[2];
    const ns = ['/usr/sbin/ip', 'netns', 'exec', entry.name];
    await cl.ok(['service', 'create', '--detach', '--name', 'bench', '--replicas', '2', '--replicas-max-per-node', '1',
      '--constraint', `node.hostname!=${cl.agents[2].hostname}`, '--stop-grace-period', '1s', '--publish', '8100:80', 'local/nginx:1']);
    await waitFor('bench 2/2', async () => (await cl.ok(['service', 'ls', '--format', '{{.Name}} {{.Replicas}}'])).includes('bench 2/2'), { timeoutMs: 90_000 });
    const ids = (await cl.ok(['service', 'ps', 'bench', '-q', '--filter', 'desired-state=running'])).trim().split('\n');
    const addrs: string[] = [];
    for (const id of ids) {
      const task = JSON.parse(await cl.ok(['inspect', '--type', 'task', id]))[0] as { NetworksAttachments: { Addresses: string[] }[] };
      addrs.push(task.NetworksAttachments[0].Addresses[0].split('/')[0]);
    }
    const curl = (url: string) => cl.lab.exec(entry, ['curl', '-sf', '--max-time', '5', url]).then((r) => r.stdout, () => undefined);
    const meshUrl = `http://${entry.addr}:8100/ip`;
    await waitFor('mesh answers', () => curl(meshUrl), { timeoutMs: 30_000 });

    // nginx as a reverse proxy in the same namespace, same backends
    mkdirSync(join(dir, 'proxy'));
    writeFileSync(join(dir, 'proxy', 'nginx.conf'), nginxConf(join(dir, 'proxy'),
      `upstream be { ${addrs.map((a) => `server ${a}:80;`).join(' ')} keepalive 64; }
       server { listen ${entry.addr}:8200; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; } }`));
    nginx = spawn(ns[0], [...ns.slice(1), '/usr/sbin/nginx', '-c', join(dir, 'proxy', 'nginx.conf'), '-p', join(dir, 'proxy'), '-e', join(dir, 'proxy', 'error.log')], { stdio: 'ignore' });
    const proxyUrl = `http://${entry.addr}:8200/ip`;
    await waitFor('nginx proxy answers', () => curl(proxyUrl), { timeoutMs: 10_000 });

    let mode = 'tcp';
    const setMode = async (m: 'tcp' | 'http') => {
      if (mode === m) return;
      await cl.ok(['service', 'update', '--detach', '--label-add', `shoal.lb.mode=${m}`, 'bench']);
      // HTTP mode adds X-Forwarded-For; nginx's /ip prints it
      await waitFor(`mesh in ${m} mode`, async () => {
        const out = await curl(meshUrl);
        return out !== undefined && /xff=\S/.test(out) === (m === 'http');
      }, { timeoutMs: 20_000 });
      mode = m;
    };
    const meshPid = cl.agents[2].proc.pid!;
    const proxyPids = () => [nginx!.pid!, ...childrenOf(nginx!.pid!)];
    const paths: { path: string; url: string; mode?: 'tcp' | 'http'; cpu: () => number[] }[] = [
      { path: 'direct (one task, overlay)', url: `http://${addrs[0]}/ip`, cpu: () => [] },
      { path: 'mesh TCP mode', url: meshUrl, mode: 'tcp', cpu: () => [meshPid] },
      { path: 'mesh HTTP mode', url: meshUrl, mode: 'http', cpu: () => [meshPid] },
      { path: 'nginx reverse proxy', url: proxyUrl, cpu: proxyPids },
    ];
    for (const p of paths) {
      if (p.mode) await setMode(p.mode);
      await wrkUrl(p.url, 1, 10, ns); // warm-up
    }
    const runs = new Map<string, ClusterBenchRow[]>(paths.map((p) => [p.path, []]));
    for (let round = 0; round < rounds; round++) {
      for (const p of paths) {
        if (p.mode) await setMode(p.mode);
        const pids = p.cpu();
        const cpu0 = pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
        const t0 = performance.now();
        const r = await wrkUrl(p.url, seconds, conns, ns);
        const cores = (pids.reduce((s, pid) => s + cpuSeconds(pid), 0) - cpu0) / ((performance.now() - t0) / 1000);
        const row: ClusterBenchRow = { path: p.path, ...r };
        if (p.path.startsWith('mesh')) row.meshCores = cores;
        if (p.path.startsWith('nginx')) row.proxyCores = cores;
        runs.get(p.path)!.push(row);
      }
    }
    return paths.map(({ path }) => {
      const rs = runs.get(path)!.sort((a, b) => a.rps - b.rps);
      return { ...rs[Math.floor(rs.length / 2)], errors: rs.reduce((n, r) => n + r.errors, 0) };
    });
  } finally {
    if (nginx?.pid) {
      for (const pid of childrenOf(nginx.pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      nginx.kill('SIGKILL');
    }
    await c?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(rows: ClusterBenchRow[], seconds: number, conns: number, rounds: number): void {
  console.log(`wrk -t2 -c${conns} -d${seconds}s in lab host 3's namespace, ${spawnSync('nproc').stdout.toString().trim()} cores, load average ${loadavg()[0].toFixed(1)}; median of ${rounds} interleaved rounds`);
  console.log('backends: two local/nginx:1 tasks on hosts 1 and 2 (ingress overlay); the mesh is host 3\'s agent process (one Node thread)');
  console.log('path                          req/s    p50 ms   p99 ms  errors  cores');
  for (const r of rows) {
    const cores = r.meshCores ?? r.proxyCores;
    console.log(`${r.path.padEnd(28)} ${r.rps.toFixed(0).padStart(7)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)}  ${cores?.toFixed(2) ?? '-'}`);
  }
  const [direct, tcp, httpm, ngx] = rows;
  console.log(`TCP mode / direct: ${(tcp.rps / direct.rps).toFixed(2)} req/s (target >= 0.7), p99 added ${(tcp.p99Ms - direct.p99Ms).toFixed(2)} ms`);
  console.log(`HTTP mode / nginx proxy: ${(httpm.rps / ngx.rps).toFixed(2)} req/s (target >= 0.8), p99 difference ${(httpm.p99Ms - ngx.p99Ms).toFixed(2)} ms`);
  console.log(`HTTP mode / direct: ${(httpm.rps / direct.rps).toFixed(2)} req/s, p99 added ${(httpm.p99Ms - direct.p99Ms).toFixed(2)} ms`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? 5);
  const conns = Number(process.argv[3] ?? 50);
  const rounds = Number(process.argv[4] ?? 3);
  runClusterMeshBench(seconds, conns, rounds)
    .then((rows) => print(rows, seconds, conns, rounds))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
