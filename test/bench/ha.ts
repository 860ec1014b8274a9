// End-to-end HA failover benchmark on a netns lab: 3 managers (`shoal agent
// --store etcd`, each with its agent-managed etcd member) + 1 worker. Each
// round kills every process in the leader host's namespace (SIGKILL: agent
// and etcd member) and measures, through the stock docker CLI on a
// surviving manager: → `docker node ls` shows another manager as Leader, and
// → the first successful `docker service create`. The dead host is restarted
// and back as Reachable before the next round. Median of ROUNDS (default 5).
// Run: node dist/test/bench/ha.js [rounds]
import { createHaCluster } from './ha-lab.js';
import { waitFor } from '../helpers/wait.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => (ms / 1000).toFixed(2);

async function main(): Promise<void> {
  const c = await createHaCluster(4, 3);
  const managers = c.agents.slice(0, 3);
  const toLeader: number[] = [];
  const toWrite: number[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const leader = await waitFor('a leader', () => c.leader(managers.find((m) => m !== managers[round % 3])!), { timeoutMs: 30_000 });
      const survivor = managers.find((m) => m !== leader)!;
      const t0 = Date.now();
      await c.killHost(leader);
      let leaderAt = 0;
      let writeAt = 0;
      // both clocks run side by side: poll node ls and service create until each succeeds
      await Promise.all([
        waitFor('new leader', async () => {
          const st = await c.managerStatus(survivor).catch(() => undefined);
          const l = st && [...st].find(([, v]) => v === 'Leader')?.[0];
          if (l && l !== leader.hostname) { leaderAt = Date.now(); return true; }
          return false;
        }, { timeoutMs: 60_000, intervalMs: 50 }),
        waitFor('first service create', async () => {
          const r = await survivor.docker(['service', 'create', '--detach', '--name', `r${round}`, '--replicas', '0', 'local/busybox:1', 'true'], { timeoutMs: 20_000 });
          if (r.code === 0) { writeAt = Date.now(); return true; }
          return false;
        }, { timeoutMs: 60_000, intervalMs: 50 }),
      ]);
      toLeader.push(leaderAt - t0);
      toWrite.push(writeAt - t0);
      console.log(`round ${round}: killed ${leader.hostname}; new leader after ${s(leaderAt - t0)} s, first service create after ${s(writeAt - t0)} s`);
      await leader.restart();
      await waitFor(`${leader.hostname} back`, async () => {
        const st = await c.managerStatus(survivor).catch(() => undefined);
        return st?.get(leader.hostname) === 'Reachable';
      }, { timeoutMs: 90_000 });
    }
    console.log(`\nleader loss, end to end (leader host: agent + etcd member killed -9; lease TTL 2 s, etcd election timeout 1 s), ${ROUNDS} rounds`);
    console.log(`  → another manager Leader in docker node ls:  median ${s(median(toLeader))} s  (${toLeader.map(s).join(', ')})`);
    console.log(`  → first successful docker service create:    median ${s(median(toWrite))} s  (${toWrite.map(s).join(', ')})`);
  } finally {
    await c.destroy();
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
