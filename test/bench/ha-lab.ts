// A highly available cluster on a netns lab for the HA tests and benchmark:
// N hosts, each a `shoal agent --store etcd` in its namespace; the first
// initializes the swarm (its agent-managed etcd member), the next `managers`-1
// join with the manager token (each adds an etcd member), the rest join as
// workers. A host "dies" when every process in its namespace gets SIGKILL
// (the agent and its etcd); a host is "partitioned" when its underlay link
// goes down. destroy() removes everything, even after a failed start.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createLab, type Lab, type LabHost } from '../helpers/lab.js';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

export interface HaCluster {
  lab: Lab;
  agents: TestAgent[];
  hosts: LabHost[];
  /** docker CLI against an agent; rejects on a non-zero exit */
  ok(agent: TestAgent, args: string[], timeoutMs?: number): Promise<string>;
  /** hostname → MANAGER STATUS column ('Leader', 'Reachable', 'Unreachable', '') as `node ls` on `via` shows it */
  managerStatus(via: TestAgent): Promise<Map<string, string>>;
  /** the agent whose node `node ls` (on `via`) shows as Leader */
  leader(via: TestAgent): Promise<TestAgent | undefined>;
  /** SIGKILL to every process in the host's namespace (agent, etcd, helpers) */
  killHost(agent: TestAgent): Promise<void>;
  /** underlay link of the host down / up */
  partition(agent: TestAgent, down: boolean): Promise<void>;
  hostOf(agent: TestAgent): LabHost;
  destroy(): Promise<void>;
}

export async function createHaCluster(n: number, managers: number, extra: string[] = []): Promise<HaCluster> {
  const lab = await createLab(n);
  const agents: TestAgent[] = [];
  const partitioned = new Set<string>();
  const destroy = async () => {
    for (const h of partitioned) await lab.exec(h, ['ip', 'link', 'set', 'eth0', 'up']).catch(() => undefined);
    for (const a of agents) await a.cleanup().catch(() => undefined);
    await lab.destroy();
  };
  const ok = async (agent: TestAgent, args: string[], timeoutMs = 30_000) => {
    const r = await agent.docker(args, { timeoutMs });
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${agent.hostname} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const managerStatus = async (via: TestAgent) => {
    const out = await ok(via, ['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}'], 10_000);
    return new Map(out.split('\n').filter(Boolean).map((l) => { const [h, st] = l.split(' '); return [h!, st ?? '']; }));
  };
  const hostOf = (a: TestAgent) => lab.hosts[agents.indexOf(a)]!;
  try {
    for (const [i, h] of lab.hosts.entries()) {
      agents.push(await startAgent(`h${i + 1}`, ['--listen-addr', `${h.addr}:2377`, '--advertise-addr', h.addr, '--store', 'etcd', ...extra], { netns: h.name }));
    }
    const addr = `${lab.hosts[0]!.addr}:2377`;
    await ok(agents[0]!, ['swarm', 'init', '--advertise-addr', addr, '--listen-addr', addr]);
    const mtoken = (await ok(agents[0]!, ['swarm', 'join-token', '-q', 'manager'])).trim();
    const wtoken = (await ok(agents[0]!, ['swarm', 'join-token', '-q', 'worker'])).trim();
    for (const [i, a] of agents.entries()) {
      if (i === 0) continue;
      const manager = i < managers;
      await ok(a, ['swarm', 'join', '--token', manager ? mtoken : wtoken, addr], 60_000);
      if (manager) {
        // the next member is added once this one is a healthy part of the quorum
        await waitFor(`${a.hostname} reachable`, async () => (await managerStatus(agents[0]!)).get(a.hostname) === 'Reachable', { timeoutMs: 60_000 });
      }
    }
    await waitFor(`${n} ready nodes`, async () => (await ok(agents[0]!, ['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((l) => l === 'Ready').length === n, { timeoutMs: 60_000 });
  } catch (err) {
    const logs = agents.map((a) => `--- ${a.hostname}\n${a.log().slice(-3000)}`).join('\n');
    await destroy();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return {
    lab, agents, hosts: lab.hosts, ok, managerStatus, hostOf, destroy,
    async leader(via) {
      const st = await managerStatus(via);
      return agents.find((a) => st.get(a.hostname) === 'Leader');
    },
    async killHost(agent) {
      const ns = hostOf(agent).name;
      const { stdout } = await run('/usr/sbin/ip', ['netns', 'pids', ns]);
      const pids = stdout.split('\n').map(Number).filter((p) => p > 1);
      for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
      await agent.kill('SIGKILL');
      await waitFor(`no process left in ${ns}`, async () => (await run('/usr/sbin/ip', ['netns', 'pids', ns])).stdout.trim() === '', { timeoutMs: 10_000 });
    },
    async partition(agent, down) {
      const h = hostOf(agent);
      await lab.exec(h, ['ip', 'link', 'set', 'eth0', down ? 'down' : 'up']);
      if (down) partitioned.add(h.name); else partitioned.delete(h.name);
    },
  };
}

/** retries a docker command until it succeeds (bounded); returns its output */
export async function eventually(via: TestAgent, args: string[], timeoutMs = 60_000): Promise<string> {
  let out = '';
  await waitFor(`docker ${args.join(' ')} on ${via.hostname}`, async () => {
    const r = await via.docker(args, { timeoutMs: 20_000 });
    out = r.stdout;
    return r.code === 0;
  }, { timeoutMs, intervalMs: 300 });
  return out;
}
