// A real cluster on a netns lab: N hosts, each running its own `shoal agent`
// inside its namespace (data plane on), the first one the manager, the rest
// joined as workers with the stock docker CLI. Everything is torn down by
// destroy(), even after a failed start.
import { createLab, type Lab } from './lab.js';
import { startAgent, type TestAgent } from './agent.js';
import { hostDocker } from './docker.js';
import { waitFor } from './wait.js';

export interface LabCluster {
  lab: Lab;
  agents: TestAgent[];
  manager: TestAgent;
  /** each host's metrics endpoint (host:port on its lab address), reachable from inside any lab host */
  metricsTargets: string[];
  /** docker CLI against the manager; rejects on a non-zero exit */
  ok(args: string[], agent?: TestAgent): Promise<string>;
  /** running task containers of a service on one agent's node */
  containersOf(agent: TestAgent, service: string): Promise<string[]>;
  /** `docker exec` in a container (through the host's dockerd) */
  exec(container: string, script: string, timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  destroy(): Promise<void>;
}

export async function createLabCluster(n: number, managers = 1): Promise<LabCluster> {
  const lab = await createLab(n);
  const agents: TestAgent[] = [];
  const destroy = async () => {
    for (const a of agents) await a.cleanup().catch(() => undefined);
    await lab.destroy();
  };
  try {
    for (const [i, h] of lab.hosts.entries()) {
      agents.push(await startAgent(`n${i + 1}`, ['--listen-addr', `${h.addr}:2377`, '--advertise-addr', h.addr, '--metrics-addr', `${h.addr}:9323`], { netns: h.name }));
    }
    const ok = async (args: string[], agent = agents[0]) => {
      const r = await agent.docker(args);
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${agent.hostname}: ${r.stderr}`);
      return r.stdout;
    };
    const addr = `${lab.hosts[0].addr}:2377`;
    await ok(['swarm', 'init', '--advertise-addr', addr, '--listen-addr', addr]);
    const token = (await ok(['swarm', 'join-token', '-q', managers > 1 ? 'manager' : 'worker'])).trim();
    const workerToken = (await ok(['swarm', 'join-token', '-q', 'worker'])).trim();
    for (const [i, w] of agents.slice(1).entries()) await ok(['swarm', 'join', '--token', i + 1 < managers ? token : workerToken, addr], w);
    await waitFor(`${n} ready nodes`, async () => (await ok(['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((l) => l === 'Ready').length === n, { timeoutMs: 30_000 });
    return {
      lab, agents, manager: agents[0], ok, destroy, metricsTargets: lab.hosts.map((h) => `${h.addr}:9323`),
      async containersOf(agent, service) {
        const r = await hostDocker(['ps', '-q', '--filter', `label=com.docker.swarm.node.id=${agent.nodeId()}`, '--filter', `label=com.docker.swarm.service.name=${service}`]);
        return r.stdout.split('\n').filter(Boolean);
      },
      exec: (container, script, timeoutMs = 20_000) => hostDocker(['exec', container, 'sh', '-c', script], { timeoutMs }),
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}
