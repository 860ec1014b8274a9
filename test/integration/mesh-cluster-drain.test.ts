// The routing mesh under change on a real 3-host lab, clients in lab host
// namespaces: no failed request among 400+ sequential ones during a
// start-first rolling update (tasks leave every node's backend set before the
// worker stops them), at most one failed among 300 when a replica is killed,
// and slowloris connections in HTTP mode neither starve normal requests nor
// live past the header timeout.
import test from 'ava';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { hostDocker } from '../helpers/docker.js';
import type { LabHost } from '../helpers/lab.js';
import { waitFor } from '../helpers/wait.js';

let c: LabCluster;
let hosts: LabHost[];
const ok = (args: string[]) => c.ok(args);
const children = new Set<ChildProcessWithoutNullStreams>();

/** sequential GETs, a new connection each; runs until stdin ends and `min` are done, or `max` are done */
const SEQ_CLIENT = `
import http from 'node:http';
const [url, min, max, gapMs] = [process.argv[1], +process.argv[2], +process.argv[3], +process.argv[4]];
let stop = false;
process.stdin.on('end', () => (stop = true)).on('error', () => (stop = true)).resume();
const get = () => new Promise((resolve, reject) => {
  const req = http.get(url, { agent: false, timeout: 10000 }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => res.statusCode === 200 ? resolve(body.trim()) : reject(new Error('status ' + res.statusCode)));
    res.on('error', reject);
  });
  req.on('timeout', () => req.destroy(new Error('timeout'))).on('error', reject);
});
const bodies = {}; const errors = []; let total = 0, failed = 0;
while (total < max && !(stop && total >= min)) {
  try { const b = await get(); bodies[b] = (bodies[b] ?? 0) + 1; } catch (e) { failed++; errors.push(total + ': ' + e.message); }
  total++;
  if (total % 10 === 0) console.log(JSON.stringify({ progress: total, failed }));
  await new Promise((r) => setTimeout(r, gapMs));
}
console.log(JSON.stringify({ done: true, total, failed, errors: errors.slice(0, 20), bodies }));
process.exit(0);
`;

/** n connections that send a request line and then one header line a second, forever */
const SLOWLORIS = `
import net from 'node:net';
const [host, port, n] = [process.argv[1], +process.argv[2], +process.argv[3]];
let opened = 0, closed = 0, answered = 0; const socks = [];
const report = () => console.log(JSON.stringify({ opened, closed, answered }));
for (let i = 0; i < n; i++) {
  const s = net.connect(port, host, () => { opened++; s.write('GET /ip HTTP/1.1\\r\\nHost: slow\\r\\n'); if (opened === n) report(); });
  s.on('data', () => { answered++; }).on('error', () => {}).on('close', () => { closed++; report(); });
  socks.push(s);
}
setInterval(() => { for (const s of socks) if (!s.destroyed && s.writable) s.write('X-Slow: 1\\r\\n'); }, 1000);
process.stdin.on('end', () => process.exit(0)).resume();
`;

interface NsProc { lines: Record<string, unknown>[]; last(): Record<string, unknown> | undefined; end(): void; exited: Promise<void> }

/** a Node script inside a lab host's namespace; one JSON object per stdout line */
function nsNode(h: LabHost, script: string, args: (string | number)[]): NsProc {
  const p = spawn('/usr/sbin/ip', ['netns', 'exec', h.name, process.execPath, '--input-type=module', '-e', script, ...args.map(String)], { stdio: 'pipe' });
  children.add(p);
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { lines.push(JSON.parse(line)); } catch { /* not ours */ }
    }
  });
  p.stderr.resume();
  const exited = new Promise<void>((r) => p.once('close', () => { children.delete(p); r(); }));
  return { lines, last: () => lines.at(-1), end: () => p.stdin.end(), exited };
}

test.before(async () => {
  c = await createLabCluster(3);
  hosts = c.lab.hosts;
  const base = ['service', 'create', '--detach', '--stop-grace-period', '1s'];
  await ok([...base, '--name', 'roll', '--replicas', '2', '--update-order', 'start-first', '--update-monitor', '1s',
    '--publish', '8090:80', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  await ok([...base, '--name', 'kill', '--replicas', '3', '--replicas-max-per-node', '1', '--restart-delay', '1s', '--publish', '8091:80', 'local/nginx:1']);
  await ok([...base, '--name', 'slow', '--replicas', '2', '--label', 'shoal.lb.mode=http', '--publish', '8092:80', 'local/nginx:1']);
  await waitFor('services converged', async () => {
    const out = await ok(['service', 'ls', '--format', '{{.Name}} {{.Replicas}}']);
    return ['roll 2/2', 'kill 3/3', 'slow 2/2'].every((s) => out.includes(s));
  }, { timeoutMs: 70_000 });
  // the mesh answers everywhere before any test starts counting
  for (const port of [8090, 8091, 8092]) {
    for (const h of hosts) {
      await waitFor(`${h.name}:${port}`, () => c.lab.exec(hosts[2], ['curl', '-sf', '--max-time', '5', `http://${h.addr}:${port}/`]).catch(() => undefined), { timeoutMs: 20_000 });
    }
  }
});

test.after.always(async () => {
  for (const p of children) p.kill('SIGKILL');
  await c?.destroy();
});

test.serial('start-first rolling update: zero failed among 400+ sequential requests', async (t) => {
  const client = nsNode(hosts[2], SEQ_CLIENT, [`http://${hosts[0].addr}:8090/`, 400, 5000, 15]);
  await waitFor('client under way', () => (client.last()?.progress as number) >= 20, { timeoutMs: 20_000 });
  await ok(['service', 'update', '--detach', '--image', 'local/busybox:2', 'roll']);
  await waitFor('update completed', async () => JSON.parse(await ok(['service', 'inspect', 'roll']))[0].UpdateStatus?.State === 'completed', { timeoutMs: 60_000 });
  // old tasks gone from every node, then a few more requests against the new set only
  await waitFor('old containers removed', async () => {
    for (const a of c.agents) {
      for (const id of await c.containersOf(a, 'roll')) {
        const img = (await hostDocker(['inspect', '-f', '{{.Config.Image}}', id])).stdout.trim();
        if (img.startsWith('local/busybox:1')) return false;
      }
    }
    return true;
  }, { timeoutMs: 20_000 });
  const seenAt = (client.last()?.progress as number) ?? 0;
  await waitFor('50 more requests', () => ((client.last()?.progress as number) ?? 0) >= seenAt + 50, { timeoutMs: 15_000 });
  client.end();
  await client.exited;
  const r = client.last() as { done: boolean; total: number; failed: number; errors: string[]; bodies: Record<string, number> };
  t.true(r?.done, JSON.stringify(r));
  t.log(`${r.total} requests, ${r.failed} failed: ${JSON.stringify(r.bodies)}`);
  t.true(r.total >= 400);
  t.is(r.failed, 0, r.errors.join('; '));
  t.true((r.bodies['hello from busybox:1'] ?? 0) > 0 && (r.bodies['hello from busybox:2'] ?? 0) > 0, JSON.stringify(r.bodies));
  t.is(Object.keys(r.bodies).length, 2);
});

test.serial('a replica killed mid-stream: at most one failed among 300 requests', async (t) => {
  const client = nsNode(hosts[2], SEQ_CLIENT, [`http://${hosts[0].addr}:8091/ip`, 300, 300, 15]);
  await waitFor('client under way', () => (client.last()?.progress as number) >= 60, { timeoutMs: 20_000 });
  // kill the replica on host 2 (not the entry host, not the client's)
  const victim = (await c.containersOf(c.agents[1], 'kill'))[0];
  t.truthy(victim);
  const k = await hostDocker(['kill', victim]);
  t.is(k.code, 0, k.stderr);
  await waitFor('client done', () => client.last()?.done === true, { timeoutMs: 60_000 });
  await client.exited;
  const r = client.last() as { total: number; failed: number; errors: string[]; bodies: Record<string, number> };
  t.log(`${r.total} requests, ${r.failed} failed ${r.errors.join('; ')}`);
  t.is(r.total, 300);
  t.true(r.failed <= 1, r.errors.join('; '));
  const replicas = new Set(Object.keys(r.bodies).map((b) => /host=(\S+)/.exec(b)?.[1]));
  t.true(replicas.size >= 3, `answered by ${[...replicas].join(',')}`);
});

test.serial('HTTP mode: 300 slowloris connections do not starve normal requests and are cut at the header timeout', async (t) => {
  const slow = nsNode(hosts[1], SLOWLORIS, [hosts[0].addr, 8092, 300]);
  await waitFor('slowloris connections open', () => (slow.lines.find((l) => l.opened === 300) ? true : undefined), { timeoutMs: 30_000 });
  const normal = nsNode(hosts[2], SEQ_CLIENT, [`http://${hosts[0].addr}:8092/ip`, 50, 50, 10]);
  await waitFor('normal requests done', () => normal.last()?.done === true, { timeoutMs: 40_000 });
  await normal.exited;
  const r = normal.last() as { total: number; failed: number; errors: string[]; bodies: Record<string, number> };
  t.is(r.total, 50);
  t.is(r.failed, 0, r.errors.join('; '));
  t.true(Object.keys(r.bodies).every((b) => b.includes(`xff=${hosts[2].addr}`)), JSON.stringify(r.bodies));
  // the mesh's header timeout (10 s by default) closes every slow connection; none reached a backend
  await waitFor('slow connections closed by the mesh', () => (slow.last()?.closed as number) === 300, { timeoutMs: 40_000 });
  slow.end();
  await slow.exited;
  const s = slow.last() as { opened: number; closed: number; answered: number };
  t.is(s.opened, 300);
  t.is(s.closed, 300);
});
