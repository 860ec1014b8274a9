// Starts real `shoal agent` processes for tests, each with its own state
// directory and API socket, and cleans up after them: the process, the state
// and every container labelled with the node ids it had.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitFor } from './wait.js';
import { docker, removeNodeContainers } from './docker.js';
import { freePort } from './net.js';

const MAIN = resolve(new URL('../../agent/cli/main.js', import.meta.url).pathname);

export interface TestAgent {
  dir: string;
  socket: string;
  host: string; // DOCKER_HOST value
  hostname: string;
  metricsPort: number;
  proc: ChildProcess;
  /** docker CLI against this agent */
  docker(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  nodeId(): string | undefined;
  /** the tail of the agent's stderr (its log), for failure messages */
  log(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface AgentOptions {
  /** run the agent inside this network namespace (a lab host) */
  netns?: string;
}

export async function startAgent(name = 'node', extra: string[] = [], opts: AgentOptions = {}): Promise<TestAgent> {
  const dir = mkdtempSync(join(tmpdir(), `shoal-${name}-`));
  const socket = join(dir, 'docker.sock');
  const hostname = `${name}-${Math.random().toString(36).slice(2, 7)}`;
  const metricsPort = await freePort();
  const nodeIds = new Set<string>();
  const readId = () => {
    const p = join(dir, 'state', 'state.json');
    if (!existsSync(p)) return undefined;
    const id = (JSON.parse(readFileSync(p, 'utf8')) as { nodeId: string }).nodeId;
    nodeIds.add(id);
    return id;
  };
  const argv = [process.execPath, MAIN, 'agent', '--state-dir', join(dir, 'state'), '--api-socket', socket,
    '--hostname', hostname, '--listen-addr', '127.0.0.1:0', '--metrics-addr', `127.0.0.1:${metricsPort}`,
    // agents sharing the root namespace would fight over the same bridges: the data plane runs in lab hosts only
    '--data-plane', opts.netns ? 'on' : 'off', ...extra];
  const cmd = opts.netns ? ['/usr/sbin/ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  const spawnAgent = () => spawn(cmd[0], cmd.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', SHOAL_LOG_LEVEL: process.env.SHOAL_TEST_AGENT_LOG ?? 'warn' },
  });
  const a: TestAgent = {
    dir, socket, host: `unix://${socket}`, hostname, metricsPort,
    proc: spawnAgent(),
    docker: (args, opts) => docker(['-H', `unix://${socket}`, ...args], opts),
    nodeId: readId,
    log: () => stderr,
    async kill(signal = 'SIGKILL') {
      readId();
      if (a.proc.exitCode !== null || a.proc.signalCode) return;
      const exited = new Promise((r) => a.proc.once('exit', r));
      a.proc.kill(signal);
      await exited;
    },
    async restart() {
      await a.kill('SIGKILL');
      rmSync(socket, { force: true });
      a.proc = spawnAgent();
      collect(a.proc);
      await ready();
    },
    async cleanup() {
      readId();
      await a.kill('SIGKILL');
      for (const id of nodeIds) await removeNodeContainers(id);
      if (process.env.SHOAL_KEEP_TEST_STATE !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
  let stderr = '';
  const collect = (p: ChildProcess) => p.stderr?.on('data', (d) => { stderr = (stderr + d).slice(-20_000); });
  collect(a.proc);
  const ready = () => waitFor(`agent ${hostname} API`, async () => {
    if (a.proc.exitCode !== null) throw new Error(`agent exited ${a.proc.exitCode}: ${stderr}`);
    return existsSync(socket) && (await a.docker(['version', '--format', '{{.Server.APIVersion}}'], { timeoutMs: 5000 })).code === 0;
  }, { timeoutMs: 20_000 });
  await ready();
  return a;
}
