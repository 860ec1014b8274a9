// shoal's own CLI against a real agent: swarm init with a default strategy,
// node ls / service ls tables and JSON, service wait, and exit codes.
import test from 'ava';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { startAgent, type TestAgent } from '../helpers/agent.js';

const MAIN = resolve(new URL('../../agent/cli/main.js', import.meta.url).pathname);
let agent: TestAgent;

function shoal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, '-H', agent.host, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

test.before(async () => { agent = await startAgent('shoalcli'); });
test.after.always(async () => { await agent?.cleanup(); });

test.serial('swarm init --strategy, node ls, service ls, service wait, and exit codes', async (t) => {
  const bad = await shoal(['swarm', 'init', '--strategy', 'bogus']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /unknown strategy bogus/);
  const init = await shoal(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--strategy', 'binpack']);
  t.is(init.code, 0, init.stderr);
  t.regex(init.stdout, /Swarm initialized: current node \([a-z0-9]{25}\) is now a manager \(default strategy binpack\)/);
  const nodes = await shoal(['node', 'ls']);
  t.regex(nodes.stdout, /^ID\s+HOSTNAME\s+ADDRESS\s+STATUS\s+AVAILABILITY\s+ROLE\s+MANAGER STATUS/);
  t.regex(nodes.stdout, new RegExp(`[a-z0-9]{25} \\*\\s+${agent.hostname}\\s+127\\.0\\.0\\.1\\s+ready\\s+active\\s+manager\\s+leader`));
  const r = await agent.docker(['service', 'create', '--detach', '--replicas', '2', '--name', 'cli', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  t.is(r.code, 0, r.stderr);
  const wait = await shoal(['service', 'wait', 'cli', '--timeout', '60']);
  t.is(wait.code, 0, wait.stderr);
  t.regex(wait.stdout, /cli: 2\/2 running/);
  const ls = JSON.parse((await shoal(['service', 'ls', '--format', 'json'])).stdout.trim());
  t.like(ls, { NAME: 'cli', MODE: 'replicated', TASKS: '2/2', STRATEGY: 'binpack', IMAGE: 'local/busybox:1' });
  const missing = await shoal(['service', 'wait', 'nope', '--timeout', '2']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nope/);
  await agent.docker(['service', 'rm', 'cli']);
});
