// Benchmark: netd's DNS server vs dnsmasq serving the same names, both on
// loopback in the same run, measured with dnsperf. Two phases per server:
// throughput (max rate, 100 queries outstanding) and latency percentiles at a
// fixed rate (dnsperf -Q, per-query latencies from -v). Prints figures and
// the ours/dnsmasq ratio. Run: node dist/test/bench/dns.js [seconds]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { chmodSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DnsServer, ServiceRecords } from '../../netd/dns/index.js';
import { freePort } from '../helpers/net.js';

export interface DnsBenchFigures {
  server: string;
  qps: number;
  avgLatencyMs: number;
  lost: number;
  fixedRateQps: number;
  p50Ms: number;
  p99Ms: number;
}

const SERVICES = 20;

function buildNames() {
  const hosts: string[] = [];
  const queries: string[] = [];
  const services = [];
  const tasks: { name: string; addr: string }[] = [];
  for (let s = 0; s < SERVICES; s++) {
    const vip = `10.0.${s}.2`;
    const addrs = [3, 4, 5].map((h) => `10.0.${s}.${h}`);
    services.push({ name: `svc${s}`, vip, taskAddrs: addrs, endpointMode: 'vip' as const });
    hosts.push(`${vip} svc${s}`);
    queries.push(`svc${s} A`, `tasks.svc${s} A`);
    addrs.forEach((a, i) => {
      const tname = `svc${s}.${i + 1}.t${s}x${i}`;
      tasks.push({ name: tname, addr: a });
      hosts.push(`${a} tasks.svc${s}`, `${a} ${tname}`);
      queries.push(`${tname} A`);
    });
  }
  return { hosts, queries, services, tasks };
}


/** Wait until something on 127.0.0.1:port answers a query (bounded). */
async function waitForDns(port: number, deadlineMs = 5000): Promise<void> {
  const q = Buffer.from('abcd01000001000000000000047376633000000100 01'.replace(/ /g, ''), 'hex');
  const sock = dgram.createSocket('udp4');
  try {
    const end = Date.now() + deadlineMs;
    while (Date.now() < end) {
      const got = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 200);
        sock.once('message', () => { clearTimeout(t); resolve(true); });
        sock.send(q, port, '127.0.0.1');
      });
      if (got) return;
    }
    throw new Error(`no DNS answer on port ${port}`);
  } finally {
    sock.close();
  }
}

/** Run dnsperf with output to a file (so reading it costs the servers nothing); return the text. */
async function dnsperf(dir: string, tag: string, args: string[]): Promise<string> {
  const out = join(dir, `${tag}.out`);
  const fd = openSync(out, 'w');
  try {
    const child = spawn('dnsperf', args, { stdio: ['ignore', fd, fd] });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    if (code !== 0) throw new Error(`dnsperf exited ${code}: ${readFileSync(out, 'utf8').slice(-500)}`);
  } finally {
    closeSync(fd);
  }
  return readFileSync(out, 'utf8');
}

async function measure(dir: string, name: string, port: number, seconds: number, fixedQps: number, queryFile: string): Promise<DnsBenchFigures> {
  const base = ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile];
  const tput = await dnsperf(dir, `${name}-tput`, [...base, '-l', String(seconds), '-q', '100']);
  const num = (re: RegExp, text: string) => Number(re.exec(text)?.[1] ?? NaN);
  const lat = await dnsperf(dir, `${name}-lat`, [...base, '-l', String(Math.max(2, Math.round(seconds / 2))), '-Q', String(fixedQps), '-v']);
  const samples = [...lat.matchAll(/^> \w+ \S+ \w+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  const pct = (p: number) => samples.length ? samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]! : NaN;
  return {
    server: name,
    qps: num(/Queries per second:\s+([\d.]+)/, tput),
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/, tput) * 1000,
    lost: num(/Queries lost:\s+(\d+)/, tput),
    fixedRateQps: num(/Queries per second:\s+([\d.]+)/, lat),
    p50Ms: pct(50),
    p99Ms: pct(99),
  };
}

export async function runDnsBench(seconds = 5, fixedQps = 10_000): Promise<{ ours: DnsBenchFigures; dnsmasq: DnsBenchFigures; ratio: number }> {
  for (const tool of ['dnsperf', 'dnsmasq']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'shoal-dnsbench-'));
  chmodSync(dir, 0o755); // dnsmasq drops to nobody
  const { hosts, queries, services, tasks } = buildNames();
  const queryFile = join(dir, 'queries');
  const hostsFile = join(dir, 'hosts');
  writeFileSync(queryFile, queries.join('\n') + '\n');
  writeFileSync(hostsFile, hosts.join('\n') + '\n', { mode: 0o644 });

  const records = new ServiceRecords();
  records.setNetworkRecords('bench', { subnet: '127.0.0.0/8', name: 'bench', services, tasks });
  const ours = new DnsServer({ records, upstream: [] });
  let dnsmasq: ChildProcess | undefined;
  try {
    const ourPort = await ours.listen('127.0.0.1', 0);
    const dmPort = await freePort();
    dnsmasq = spawn('dnsmasq', [
      '--no-resolv', '--no-daemon', '--port', String(dmPort), '--listen-address', '127.0.0.1', '--bind-interfaces',
      '--no-hosts', `--addn-hosts=${hostsFile}`, '--pid-file=', '--log-facility=-',
    ], { stdio: 'ignore' });
    await waitForDns(dmPort);
    await waitForDns(ourPort);
    const a = await measure(dir, 'shoal', ourPort, seconds, fixedQps, queryFile);
    const b = await measure(dir, 'dnsmasq', dmPort, seconds, fixedQps, queryFile);
    return { ours: a, dnsmasq: b, ratio: a.qps / b.qps };
  } finally {
    if (dnsmasq?.pid !== undefined && dnsmasq.exitCode === null) {
      const exited = new Promise((r) => dnsmasq!.once('exit', r));
      dnsmasq.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (dnsmasq.exitCode === null) dnsmasq.kill('SIGKILL');
    }
    await ours.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function row(f: DnsBenchFigures): string {
  return `${f.server.padEnd(8)} ${f.qps.toFixed(0).padStart(8)} q/s  avg ${f.avgLatencyMs.toFixed(3)} ms (saturated, lost ${f.lost})  |  at ${f.fixedRateQps.toFixed(0)} q/s: p50 ${f.p50Ms.toFixed(3)} ms  p99 ${f.p99Ms.toFixed(3)} ms`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? 5);
  runDnsBench(seconds).then(
    (r) => {
      console.log(`dns benchmark: dnsperf, ${seconds} s max-rate + fixed-rate latency per server, ${SERVICES * 5} names`);
      console.log(row(r.ours));
      console.log(row(r.dnsmasq));
      console.log(`ratio shoal/dnsmasq: ${r.ratio.toFixed(2)} (target >= 0.5)`);
    },
    (err) => {
      console.error(`dns benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
