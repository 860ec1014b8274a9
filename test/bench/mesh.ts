// Benchmark: the ingress mesh (lb) in TCP and HTTP mode vs going straight to
// the backend vs nginx as a reverse proxy, all on loopback in one run against
// the same nginx backends (Debian /usr/sbin/nginx, two server blocks), load
// from wrk. Prints req/s, p50/p99, ratios, the p99 the mesh adds, and the CPU
// the mesh process used. Run: node dist/test/bench/mesh.js [seconds] [connections] [rounds]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Mesh } from '../../lb/index.js';
import { freePort } from '../helpers/net.js';

export interface MeshBenchRow { path: string; rps: number; p50Ms: number; p99Ms: number; errors: number; meshCores?: number }

const LO = '127.0.0.1';
const NGINX = '/usr/sbin/nginx';


async function waitPort(port: number, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host: LO, port }, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function nginxConf(dir: string, servers: string): string {
  return `daemon off; master_process on; worker_processes 1; user root;
pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  ${servers}
}
`;
}

function startNginx(dir: string, name: string, conf: string): ChildProcess {
  const d = join(dir, name);
  spawnSync('mkdir', ['-p', d]);
  writeFileSync(join(d, 'nginx.conf'), nginxConf(d, conf));
  const p = spawn(NGINX, ['-c', join(d, 'nginx.conf'), '-p', d, '-e', join(d, 'error.log')], { stdio: 'ignore' });
  return p;
}

export function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

function wrk(port: number, seconds: number, conns: number): Promise<Omit<MeshBenchRow, 'path'>> {
  return wrkUrl(`http://${LO}:${port}/`, seconds, conns);
}

/** one bounded wrk run; `prefix` runs it elsewhere (e.g. ['ip', 'netns', 'exec', NS]) */
export function wrkUrl(url: string, seconds: number, conns: number, prefix: string[] = []): Promise<Omit<MeshBenchRow, 'path'>> {
  return new Promise((resolve, reject) => {
    const argv = [...prefix, 'wrk', '-t2', `-c${conns}`, `-d${seconds}s`, '--latency', '--timeout', '5s', url];
    const p = spawn(argv[0], argv.slice(1));
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const killer = setTimeout(() => p.kill('SIGKILL'), (seconds + 20) * 1000);
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(killer);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
      const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
      const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
      if (Number.isNaN(rps)) reject(new Error(`wrk output not understood:\n${out}`));
      else resolve({ rps, p50Ms: p50, p99Ms: p99, errors });
    });
  });
}

export async function runMeshBench(seconds = 5, conns = 50, rounds = 3): Promise<MeshBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-meshbench-'));
  const procs: ChildProcess[] = [];
  const mesh = new Mesh({ bindHost: LO });
  try {
    const [b1, b2, px, tcpPort, httpPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const body = `location / { return 200 "hello from nginx\\n"; }`;
    procs.push(startNginx(dir, 'backend', `server { listen ${LO}:${b1}; ${body} } server { listen ${LO}:${b2}; ${body} }`));
    procs.push(
      startNginx(
        dir,
        'proxy',
        `upstream be { server ${LO}:${b1}; server ${LO}:${b2}; keepalive 64; }
         server { listen ${LO}:${px}; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; } }`,
      ),
    );
    await Promise.all([waitPort(b1), waitPort(b2), waitPort(px)]);
    const backends = [b1, b2].map((p) => ({ addr: `${LO}:${p}`, healthy: true }));
    await mesh.setServices([
      { serviceId: 'bench-tcp', name: 'bench-tcp', ports: [{ protocol: 'tcp', publishedPort: tcpPort, targetPort: 80, mode: 'tcp' }], backends },
      { serviceId: 'bench-http', name: 'bench-http', ports: [{ protocol: 'tcp', publishedPort: httpPort, targetPort: 80, mode: 'http' }], backends },
    ]);
    const paths: [string, number, boolean][] = [
      ['direct (nginx backend)', b1, false],
      ['mesh TCP mode', tcpPort, true],
      ['mesh HTTP mode', httpPort, true],
      ['nginx reverse proxy', px, false],
    ];
    for (const [, port] of paths) await wrk(port, 1, 10); // warm-up
    // interleave the paths over several rounds and keep each path's median
    // round (by req/s): the machine is shared and noisy
    const runs = new Map<string, MeshBenchRow[]>(paths.map(([p]) => [p, []]));
    for (let round = 0; round < rounds; round++) {
      for (const [path, port, isMesh] of paths) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const r = await wrk(port, seconds, conns);
        const cpu = process.cpuUsage(cpu0);
        const row: MeshBenchRow = { path, ...r };
        if (isMesh) row.meshCores = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
        runs.get(path)!.push(row);
      }
    }
    return paths.map(([path]) => {
      const rs = runs.get(path)!.sort((a, b) => a.rps - b.rps);
      const med = rs[Math.floor(rs.length / 2)];
      return { ...med, errors: rs.reduce((n, r) => n + r.errors, 0) };
    });
  } finally {
    await mesh.close();
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(rows: MeshBenchRow[], seconds: number, conns: number, rounds: number): void {
  console.log(`wrk -t2 -c${conns} -d${seconds}s on loopback, ${nproc()} cores, load average ${loadavg()[0].toFixed(1)}; median of ${rounds} interleaved rounds;`);
  console.log('same nginx backends (1 worker, 2 server blocks) for every path; the mesh is 1 Node process (in this one)');
  console.log('path                      req/s    p50 ms   p99 ms  errors  mesh cores');
  for (const r of rows) {
    console.log(
      `${r.path.padEnd(24)} ${r.rps.toFixed(0).padStart(7)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)}  ${r.meshCores?.toFixed(2) ?? '-'}`,
    );
  }
  const by = Object.fromEntries(rows.map((r) => [r.path, r]));
  const direct = by['direct (nginx backend)'];
  const tcp = by['mesh TCP mode'];
  const httpm = by['mesh HTTP mode'];
  const ngx = by['nginx reverse proxy'];
  console.log(`TCP mode / direct: ${(tcp.rps / direct.rps).toFixed(2)} req/s, p99 added ${(tcp.p99Ms - direct.p99Ms).toFixed(2)} ms`);
  console.log(`HTTP mode / direct: ${(httpm.rps / direct.rps).toFixed(2)} req/s, p99 added ${(httpm.p99Ms - direct.p99Ms).toFixed(2)} ms`);
  console.log(`HTTP mode / nginx proxy: ${(httpm.rps / ngx.rps).toFixed(2)} req/s, p99 difference ${(httpm.p99Ms - ngx.p99Ms).toFixed(2)} ms`);
}

function nproc(): number {
  return Number(spawnSync('nproc').stdout.toString().trim()) || 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? 5);
  const conns = Number(process.argv[3] ?? 50);
  const rounds = Number(process.argv[4] ?? 3);
  runMeshBench(seconds, conns, rounds)
    .then((rows) => print(rows, seconds, conns, rounds))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
