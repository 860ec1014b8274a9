#!/usr/bin/env node
// Owns shoal's own command line: `shoal agent` (the daemon) and the commands
// the docker CLI cannot say (`swarm init --strategy`, `service wait`), which
// talk to the agent's API with dockerode.
import { Command, Option } from 'commander';
import { AGENT_DEFAULTS, runAgent } from './agent.js';
import { clientCommands } from './client.js';
import { LOG_LEVELS, logger, setLogLevel } from '../common/log.js';
import { VERSION } from '../common/version.js';

const log = logger('cli');
const program = new Command('shoal').version(VERSION).description('A Docker Swarm-style container cluster');

program.command('agent')
  .description('run the node agent (Docker API on --api-socket)')
  .option('--state-dir <dir>', 'state directory', AGENT_DEFAULTS.stateDir)
  .option('--api-socket <path>', 'Docker-compatible API socket', AGENT_DEFAULTS.apiSocket)
  .option('--hostname <name>', 'node name shown by `docker node ls` (default: the host name)')
  .option('--docker-host <url>', 'dockerd that runs this node\'s containers', AGENT_DEFAULTS.dockerHost)
  .option('--advertise-addr <addr>', 'address other nodes reach this node at')
  .option('--listen-addr <addr>', 'cluster management listen address', AGENT_DEFAULTS.listenAddr)
  .addOption(new Option('--metrics-addr <addr>', 'Prometheus /metrics listen address').default(AGENT_DEFAULTS.metricsAddr))
  .addOption(new Option('--data-plane <mode>', 'run overlays, service DNS, VIPs and the routing mesh').choices(['on', 'off']).default('on'))
  .option('--store <store>', 'cluster state of a swarm this node initializes: embedded (single manager), etcd (an etcd member this agent runs; managers can be added) or etcd://host:port[,…] (an external etcd cluster)', AGENT_DEFAULTS.store)
  .option('--etcd-bin <path>', 'etcd binary for --store etcd (Debian package etcd-server)', AGENT_DEFAULTS.etcdBin)
  .addOption(new Option('--log-level <level>', 'log level (JSON lines on stderr)').choices(LOG_LEVELS).default(process.env.SHOAL_LOG_LEVEL ?? 'info'))
  .action(async (o) => {
    setLogLevel(o.logLevel);
    const agent = await runAgent(o);
    const shutdown = (sig: string) => {
      log.info({ sig }, 'shutting down');
      agent.close().then(() => process.exit(0), (err) => { log.error({ err }, 'shutdown failed'); process.exit(1); });
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });

clientCommands(program);

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
