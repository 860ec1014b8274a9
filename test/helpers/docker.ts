// Runs the stock docker CLI (and the host's dockerd) for tests, with bounded time.
import { execFile } from 'node:child_process';

export const DOCKER_CLI = '/usr/local/bin/docker';

export function docker(args: string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(DOCKER_CLI, args, { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20, env: { ...process.env, DOCKER_HOST: '', ...opts.env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** the host's dockerd, directly */
export const hostDocker = (args: string[], opts?: { timeoutMs?: number }) => docker(['-H', 'unix:///var/run/docker.sock', ...args], opts);

export async function nodeContainers(nodeId: string, all = false): Promise<string[]> {
  const r = await hostDocker(['ps', '-q', ...(all ? ['-a'] : []), '--filter', `label=com.docker.swarm.node.id=${nodeId}`]);
  return r.stdout.split('\n').filter(Boolean);
}

export async function removeNodeContainers(nodeId: string): Promise<void> {
  const ids = await nodeContainers(nodeId, true);
  if (ids.length) await hostDocker(['rm', '-f', ...ids], { timeoutMs: 60_000 });
}
