// A swarm on the embedded store (the default) cannot add managers: a manager
// join fails with words that say what to do (start managers with --store
// etcd), and nothing is left half-made (no node record, the joiner stays out).
import test from 'ava';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { freePort } from '../helpers/net.js';

let mgr: TestAgent;
let other: TestAgent;

test.before(async () => {
  mgr = await startAgent('emb');
  other = await startAgent('emb-join');
});

test.after.always(async () => {
  await Promise.all([mgr?.cleanup(), other?.cleanup()]);
});

test('a manager join to an embedded-store swarm is refused clearly and leaves nothing behind', async (t) => {
  const addr = `127.0.0.1:${await freePort()}`;
  const init = await mgr.docker(['swarm', 'init', '--advertise-addr', addr, '--listen-addr', addr]);
  t.is(init.code, 0, init.stderr);
  const token = (await mgr.docker(['swarm', 'join-token', '-q', 'manager'])).stdout.trim();
  const r = await other.docker(['swarm', 'join', '--token', token, addr]);
  t.not(r.code, 0);
  t.regex(r.stderr, /--store etcd/);
  const ls = await mgr.docker(['node', 'ls', '--format', '{{.Hostname}}']);
  t.deepEqual(ls.stdout.split('\n').filter(Boolean), [mgr.hostname]);
  t.regex((await other.docker(['info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout, /inactive/);
});
