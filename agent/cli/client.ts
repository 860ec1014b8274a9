// Owns the client side of shoal's CLI: commands sent to an agent's API with
// dockerode (the same API the docker CLI uses), for what docker cannot say.
import type { Command } from 'commander';
import type Docker from 'dockerode';
import { AGENT_DEFAULTS } from './agent.js';
import { dockerClient } from '../docker.js';

function client(host: string | undefined): Docker {
  return dockerClient(host || process.env.DOCKER_HOST || `unix://${AGENT_DEFAULTS.apiSocket}`);
}

/** prints rows as an aligned table (header first), or as JSON lines with --format json */
function print(rows: Record<string, string>[], columns: string[], format: string): void {
  if (format === 'json') {
    for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  if (format !== 'table') throw new Error(`unknown format ${format}: use table or json`);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((x, i) => (i === cells.length - 1 ? x : x.padEnd(widths[i] + 3))).join('').trimEnd() + '\n';
  process.stdout.write(line(columns));
  for (const r of rows) process.stdout.write(line(columns.map((c) => r[c] ?? '')));
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

  const node = program.command('node').description('inspect nodes');
  node.command('ls')
    .description('list the swarm\'s nodes')
    .option('--format <format>', 'table or json', 'table')
    .action(async (o) => {
      const d = client(program.opts().host);
      const self = ((await d.info()) as { Swarm?: { NodeID?: string } }).Swarm?.NodeID;
      const nodes = (await d.listNodes()) as { ID: string; Description: { Hostname: string; Engine: { EngineVersion: string } }; Status: { State: string; Addr: string }; Spec: { Availability: string; Role: string }; ManagerStatus?: { Leader?: boolean; Reachability: string } }[];
      nodes.sort((a, b) => a.Description.Hostname.localeCompare(b.Description.Hostname));
      print(nodes.map((n) => ({
        ID: n.ID + (n.ID === self ? ' *' : ''), HOSTNAME: n.Description.Hostname, ADDRESS: n.Status.Addr, STATUS: n.Status.State,
        AVAILABILITY: n.Spec.Availability, ROLE: n.Spec.Role, 'MANAGER STATUS': n.ManagerStatus ? (n.ManagerStatus.Leader ? 'leader' : n.ManagerStatus.Reachability) : '',
      })), ['ID', 'HOSTNAME', 'ADDRESS', 'STATUS', 'AVAILABILITY', 'ROLE', 'MANAGER STATUS'], o.format);
    });

  const service = program.command('service').description('inspect services');
  service.command('ls')
    .description('list services with running/desired tasks and the strategy that places them')
    .option('--format <format>', 'table or json', 'table')
    .action(async (o) => {
      const d = client(program.opts().host);
      const services = (await d.listServices({ status: true } as object)) as { ID: string; Spec: { Name: string; Labels?: Record<string, string>; Mode: { Global?: object }; TaskTemplate: { ContainerSpec: { Image: string } } }; ServiceStatus?: { RunningTasks: number; DesiredTasks: number }; UpdateStatus?: { State: string } }[];
      const cluster = (await d.swarmInspect().catch(() => undefined)) as { Spec?: { Labels?: Record<string, string> } } | undefined;
      services.sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name));
      print(services.map((s) => ({
        ID: s.ID.slice(0, 12), NAME: s.Spec.Name, MODE: s.Spec.Mode.Global ? 'global' : 'replicated',
        TASKS: `${s.ServiceStatus?.RunningTasks ?? 0}/${s.ServiceStatus?.DesiredTasks ?? 0}`,
        STRATEGY: s.Spec.Labels?.['shoal.strategy'] ?? cluster?.Spec?.Labels?.['shoal.strategy'] ?? 'spread',
        UPDATE: s.UpdateStatus?.State ?? '', IMAGE: s.Spec.TaskTemplate.ContainerSpec.Image,
      })), ['ID', 'NAME', 'MODE', 'TASKS', 'STRATEGY', 'UPDATE', 'IMAGE'], o.format);
    });
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
