// `docker events` against a manager: swarm events (service create/update/
// remove, node drain) stream live and can be replayed with --since/--until.
import test from 'ava';
import { spawn } from 'node:child_process';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { DOCKER_CLI } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

let agent: TestAgent;
test.before(async () => {
  agent = await startAgent('events');
  const r = await agent.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  if (r.code !== 0) throw new Error(r.stderr);
});
test.after.always(async () => { await agent?.cleanup(); });

async function ok(args: string[]): Promise<string> {
  const r = await agent.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test.serial('docker events shows a service create, update and remove and a node drain, live and replayed', async (t) => {
  const cli = spawn(DOCKER_CLI, ['-H', agent.host, 'events', '--filter', 'type=service', '--filter', 'type=node'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { cli.kill('SIGKILL'); });
  let out = '';
  cli.stdout.on('data', (d) => { out += d; });
  await new Promise((r) => setTimeout(r, 500));
  const started = Math.floor(Date.now() / 1000) - 1;
  await ok(['service', 'create', '--detach', '--name', 'ev', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await ok(['service', 'scale', '--detach', 'ev=2']);
  await ok(['node', 'update', '--availability', 'drain', agent.hostname]);
  await ok(['node', 'update', '--availability', 'active', agent.hostname]);
  await ok(['service', 'rm', 'ev']);
  await waitFor('events arrived', () => /service remove/.test(out), { timeoutMs: 15_000 });
  t.regex(out, /service create [a-z0-9]{25} \(name=ev\)/);
  t.regex(out, /service update [a-z0-9]{25} \(name=ev, replicas\.new=2, replicas\.old=1\)/);
  t.regex(out, new RegExp(`node update [a-z0-9]{25} \\(availability\\.new=drain, availability\\.old=active, name=${agent.hostname}\\)`));
  t.regex(out, /service remove [a-z0-9]{25} \(name=ev\)/);
  t.notRegex(out, /container /, 'type filters keep dockerd\'s container events out');
  const replay = await ok(['events', '--since', String(started), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'type=service', '--filter', 'event=create']);
  t.regex(replay, /service create [a-z0-9]{25} \(name=ev\)/);
  t.notRegex(replay, /service remove/);
  const bad = await agent.docker(['events', '--filter', 'type=service', '--since', 'yesterday-ish', '--until', '0s']);
  t.not(bad.code, 0);
});
