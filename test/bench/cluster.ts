// Benchmark (issue 2): convergence of `service create --replicas 30` against
// 30 sequential `docker run -d` on the same dockerd, measured in one run; a
// killed task's replacement time; the agent's memory idle and with 30 tasks.
// Run: node dist/test/bench/cluster.js
import { readFileSync } from 'node:fs';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { hostDocker, nodeContainers } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

const N = 30;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function sequentialDockerRun(): Promise<number> {
  const tag = `shoal-bench-${process.pid}`;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const r = await hostDocker(['run', '-d', '--network', 'none', '--label', tag, '--name', `${tag}-${i}`, 'local/busybox:1', 'sleep', '3600']);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const ms = performance.now() - t0;
  const ids = (await hostDocker(['ps', '-aq', '--filter', `label=${tag}`])).stdout.split('\n').filter(Boolean);
  if (ids.length) await hostDocker(['rm', '-f', ...ids], { timeoutMs: 120_000 });
  return ms;
}

async function ok(a: TestAgent, args: string[]): Promise<string> {
  const r = await a.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export async function main(): Promise<void> {
  const agent = await startAgent('bench');
  try {
    await ok(agent, ['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    await new Promise((r) => setTimeout(r, 2000));
    const idle = rssMiB(agent.proc.pid!);

    const baseline = await sequentialDockerRun();
    const t0 = performance.now();
    await ok(agent, ['service', 'create', '--detach', '--replicas', String(N), '--name', 'conv', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
    const nodeId = agent.nodeId()!;
    await waitFor('30 running', async () => (await ok(agent, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === `${N}/${N}`, { timeoutMs: 120_000, intervalMs: 50 });
    const converge = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 2000));
    const loaded = rssMiB(agent.proc.pid!);

    const replace: number[] = [];
    for (let i = 0; i < 5; i++) {
      const ids = await nodeContainers(nodeId);
      const victim = ids[i % ids.length];
      const k0 = performance.now();
      await hostDocker(['kill', victim]);
      await waitFor('replacement running', async () => {
        const now = await nodeContainers(nodeId);
        return !now.includes(victim) && now.length === N;
      }, { timeoutMs: 60_000, intervalMs: 25 });
      replace.push(performance.now() - k0);
      await new Promise((r) => setTimeout(r, 1000));
    }
    replace.sort((a, b) => a - b);
    await ok(agent, ['service', 'rm', 'conv']);

    console.log('convergence, 30 replicas (issue 2)');
    console.log(`  docker run -d x${N} sequential: ${(baseline / 1000).toFixed(2)} s`);
    console.log(`  shoal service create --replicas ${N}: ${(converge / 1000).toFixed(2)} s`);
    console.log(`  ratio shoal/sequential: ${(converge / baseline).toFixed(2)}   (Swarm here: 0.80; target <= 0.6)`);
    console.log(`killed task -> replacement running: median ${(replace[2] / 1000).toFixed(2)} s, max ${(replace[4] / 1000).toFixed(2)} s   (Swarm here: 6.8 s; target < 1.5 s)`);
    console.log(`agent RSS: idle ${idle.toFixed(0)} MiB, with ${N} tasks ${loaded.toFixed(0)} MiB   (Swarm's dockerd+containerd idle: ~185 MB; target < 80 MB)`);
  } finally {
    await agent.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
}
