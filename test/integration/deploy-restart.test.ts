// What the systemd unit relies on (KillMode=process, Restart=on-failure):
// on SIGTERM the agent exits 0 and leaves its task containers running, and
// the next start adopts the same containers instead of replacing them.
import test from 'ava';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { nodeContainers } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

let agent: TestAgent | undefined;
test.after.always(async () => { await agent?.cleanup(); });

async function ok(a: TestAgent, args: string[]): Promise<string> {
  const r = await a.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

test('a stopped agent leaves its containers running; the restarted agent adopts them', async (t) => {
  const a = agent = await startAgent('restart');
  const name = `keep-${Math.random().toString(36).slice(2, 7)}`;
  await ok(a, ['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  await ok(a, ['service', 'create', '--detach', '--replicas', '2', '--name', name, '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('2/2', async () => (await ok(a, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '2/2', { timeoutMs: 60_000 });
  const nodeId = a.nodeId()!;
  const before = (await nodeContainers(nodeId)).sort();
  t.is(before.length, 2);
  const tasksBefore = (await ok(a, ['service', 'ps', '-q', '--no-trunc', '--filter', 'desired-state=running', name])).trim().split('\n').sort();

  // what `systemctl stop/restart shoal-agent` does with KillMode=process
  await a.kill('SIGTERM');
  t.is(a.proc.exitCode, 0, 'a clean stop is not a failure, so Restart=on-failure leaves it stopped');
  t.deepEqual((await nodeContainers(nodeId)).sort(), before, 'containers keep running without the agent');

  await a.restart();
  // a scale-up after the restart is worked on only after the first assignment
  // set, where the agent adopts or replaces what it found: once the third task
  // runs, the outcome for the first two is settled
  await ok(a, ['service', 'scale', '--detach', `${name}=3`]);
  await waitFor('3/3 after restart', async () => (await ok(a, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '3/3'
    && (await nodeContainers(nodeId)).length === 3, { timeoutMs: 60_000 });
  const after = await nodeContainers(nodeId);
  t.true(before.every((id) => after.includes(id)), 'the first two containers were adopted, not replaced');
  const tasksAfter = (await ok(a, ['service', 'ps', '-q', '--no-trunc', '--filter', 'desired-state=running', name])).trim().split('\n');
  t.true(tasksBefore.every((id) => tasksAfter.includes(id)), 'and their tasks are still the desired ones');
  t.is(tasksAfter.length, 3);
  await ok(a, ['service', 'rm', name]);
});
