// Benchmark (issue 3): a worker's agent is killed (-9) with its containers →
// the node is marked down → all replicas run elsewhere. Median of 3 rounds.
// Run: node dist/test/bench/failover.js
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { hostDocker, nodeContainers } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

async function ok(a: TestAgent, args: string[]): Promise<string> {
  const r = await a.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function main(): Promise<void> {
  const addr = `127.0.0.1:${await freePort()}`;
  const mgr = await startAgent('fo-mgr', ['--listen-addr', addr]);
  const workers = [await startAgent('fo-w1'), await startAgent('fo-w2')];
  const all = [mgr, ...workers];
  try {
    await ok(mgr, ['swarm', 'init', '--advertise-addr', addr]);
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim();
    for (const w of workers) await ok(w, ['swarm', 'join', '--token', token, addr]);
    await ok(mgr, ['service', 'create', '--detach', '--replicas', '6', '--name', 'fo', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
    const downs: number[] = [];
    const backs: number[] = [];
    for (let round = 0; round < 3; round++) {
      const victim = workers[round % 2];
      await ok(mgr, ['service', 'update', '--detach', '--force', 'fo']);
      await waitFor('victim runs tasks', async () => (await nodeContainers(victim.nodeId()!)).length >= 2 &&
        (await ok(mgr, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '6/6', { timeoutMs: 90_000 });
      await new Promise((r) => setTimeout(r, 6000)); // let the update settle
      const ids = await nodeContainers(victim.nodeId()!);
      const t0 = performance.now();
      await victim.kill('SIGKILL');
      await hostDocker(['rm', '-f', ...ids]);
      await waitFor('node down', async () => (await ok(mgr, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).includes(`${victim.hostname} Down`), { timeoutMs: 60_000, intervalMs: 50 });
      downs.push(performance.now() - t0);
      await waitFor('6 running elsewhere', async () => {
        const rows = (await ok(mgr, ['service', 'ps', 'fo', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}'])).trim().split('\n');
        return rows.filter((l) => l.includes('Running') && !l.startsWith(victim.hostname + ' ')).length === 6;
      }, { timeoutMs: 60_000, intervalMs: 50 });
      backs.push(performance.now() - t0);
      await victim.restart();
      await waitFor('victim ready', async () => (await ok(mgr, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).includes(`${victim.hostname} Ready`), { timeoutMs: 60_000 });
    }
    console.log('node failure (agent kill -9 + its containers removed), 3 nodes, 6 replicas (issue 3)');
    console.log(`  node marked down:       median ${(median(downs) / 1000).toFixed(2)} s  [${downs.map((x) => (x / 1000).toFixed(2)).join(', ')}]   (Swarm here: ~10 s)`);
    console.log(`  all replicas elsewhere: median ${(median(backs) / 1000).toFixed(2)} s  [${backs.map((x) => (x / 1000).toFixed(2)).join(', ')}]   (Swarm here: 16.6-17.9 s; target < 5 s)`);
  } finally {
    for (const a of all) await a.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
}
