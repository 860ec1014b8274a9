// Owns the client side of shoal's CLI: commands sent to an agent's API with
// dockerode (the same API the docker CLI uses), for what docker cannot say.
import type { Command } from 'commander';
import Docker from 'dockerode';
import { AGENT_DEFAULTS } from './agent.js';

function client(host: string | undefined): Docker {
  const h = host || process.env.DOCKER_HOST || `unix://${AGENT_DEFAULTS.apiSocket}`;
  const u = new URL(h);
  return u.protocol === 'unix:' ? new Docker({ socketPath: u.pathname }) : new Docker({ host: u.hostname, port: Number(u.port) });
}

export function clientCommands(program: Command): void {
  program.option('-H, --host <url>', 'agent API address (default $DOCKER_HOST or the local socket)');

  const swarm = program.command('swarm').description('manage the swarm');
  swarm.command('init')
    .description('create a swarm with this node as its first manager')
    .option('--advertise-addr <addr>', 'address other nodes reach this node at')
    .option('--listen-addr <addr>', 'cluster management listen address', '0.0.0.0:2377')
    .option('--strategy <name>', 'default scheduling strategy: spread, binpack or random', 'spread')
    .action(async (o) => {
      if (!['spread', 'binpack', 'random'].includes(o.strategy)) throw new Error(`unknown strategy ${o.strategy}: use spread, binpack or random`);
      const d = client(program.opts().host);
      const id = await d.swarmInit({ ListenAddr: o.listenAddr, AdvertiseAddr: o.advertiseAddr, Spec: { Labels: { 'shoal.strategy': o.strategy } } });
      process.stdout.write(`Swarm initialized: current node (${id}) is now a manager (default strategy ${o.strategy}).\n`);
    });

  const service = program.command('service').description('inspect services');
  service.command('wait <service>')
    .description('wait until every task of a service runs the current spec')
    .option('--timeout <seconds>', 'give up after this long', '120')
    .action(async (name: string, o) => {
      const d = client(program.opts().host);
      const deadline = Date.now() + Number(o.timeout) * 1000;
      for (;;) {
        const svc = await d.getService(name).inspect();
        const tasks = await d.listTasks({ filters: JSON.stringify({ service: [svc.ID], 'desired-state': ['running'] }) }) as { Status: { State: string } }[];
        const want = svc.Spec.Mode?.Replicated?.Replicas ?? tasks.length;
        const running = tasks.filter((t) => t.Status.State === 'running').length;
        if (running >= want && tasks.length >= want) { process.stdout.write(`${svc.Spec.Name}: ${running}/${want} running\n`); return; }
        if (Date.now() > deadline) throw new Error(`${svc.Spec.Name}: ${running}/${want} running after ${o.timeout}s`);
        await new Promise((r) => setTimeout(r, 250));
      }
    });
}
