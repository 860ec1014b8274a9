// Proofs of service DNS and VIPs (issue 5) on a 3-host lab cluster: dig from
// the hosts against a gateway (UDP and TCP) and busybox nslookup inside tasks;
// VIP and tasks.NAME answers, dnsrr, scoping to networks, forwarding to an
// upstream the test runs (dnsmasq in a lab host, via /etc/netns/HOST/resolv.conf),
// answers following scale and health, VIP balancing and hairpin, and a
// fixed-seed fuzz that the server survives.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { hostDocker } from '../helpers/docker.js';
import { dig, hostIndexOf, runInHost, subnetOf, taskAddrs, waitRunning } from '../helpers/net-cluster.js';

let c: LabCluster;
let gw: string;
let vip: string;
let upstream: ChildProcess | undefined;
let netnsDir: string | undefined;
const ok = (args: string[]) => c.ok(args);
const HTTPD = ['local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www'];
const svc = (name: string, net: string, extra: string[], cmd = HTTPD) =>
  ok(['service', 'create', '--detach', '--name', name, '--network', net, '--stop-grace-period', '1s', ...extra, ...cmd]);
const host = (i: number) => c.lab.hosts[i]!;
/** the container of the running task of a service on host i (from the task, not a label search: a replacement may be starting) */
const taskContainer = async (service: string, net: string, i?: number) =>
  waitFor(`a running ${service} task${i === undefined ? '' : ` on host ${i + 1}`}`, async () =>
    (await taskAddrs(c, service, net)).find((x) => x.state === 'running' && x.container && (i === undefined || hostIndexOf(c, x.nodeId) === i))?.container);
const clientOn = (i: number) => taskContainer('client', 'appnet', i);
const UPSTREAM_ADDR = '192.0.2.77';

/** A records of `name` from busybox nslookup inside a container (undefined: lookup failed) */
async function nslookup(cid: string, name: string): Promise<{ code: number; addrs: string[]; out: string }> {
  const r = await c.exec(cid, `nslookup ${name}`);
  const after = r.stdout.split(/Name:/).slice(1).join('\n');
  const addrs = [...after.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
  return { code: r.code, addrs, out: r.stdout + r.stderr };
}

test.before(async () => {
  c = await createLabCluster(3);
  // restarts below must not look like node failures (3 heartbeat periods)
  await ok(['swarm', 'update', '--dispatcher-heartbeat', '5s']);
  await ok(['network', 'create', '-d', 'overlay', 'appnet']);
  await ok(['network', 'create', '-d', 'overlay', 'othernet']);
  await svc('web', 'appnet', ['--replicas', '3', '--replicas-max-per-node', '1']);
  await svc('rr', 'appnet', ['--replicas', '2', '--endpoint-mode', 'dnsrr']);
  await svc('client', 'appnet', ['--mode', 'global'], ['local/busybox:1', 'sleep', '3600']);
  await svc('lonely', 'othernet', ['--replicas', '1'], ['local/busybox:1', 'sleep', '3600']);
  // the upstream resolver: dnsmasq in host 3; host 2's agent reads it from its resolv.conf
  upstream = spawn('/usr/sbin/ip', ['netns', 'exec', host(2).name, '/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null',
    '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${host(2).addr}`, '--port=53', '--pid-file=',
    `--address=/upstream.test/${UPSTREAM_ADDR}`], { stdio: 'ignore' });
  netnsDir = `/etc/netns/${host(1).name}`;
  mkdirSync(netnsDir, { recursive: true });
  writeFileSync(`${netnsDir}/resolv.conf`, `nameserver ${host(2).addr}\n`);
  await waitRunning(c, 'web', 'appnet', 3);
  await waitRunning(c, 'client', 'appnet', 3);
  await waitRunning(c, 'rr', 'appnet', 2);
  await waitRunning(c, 'lonely', 'othernet', 1);
  await c.agents[1]!.restart();
  await waitFor('3 ready nodes', async () => (await ok(['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((l) => l === 'Ready').length === 3);
  gw = (await subnetOf(c, 'appnet')).gateway;
  const s = JSON.parse(await ok(['service', 'inspect', 'web']))[0];
  vip = s.Endpoint.VirtualIPs.map((v: { Addr: string }) => v.Addr.split('/')[0]).find((a: string) => a.startsWith(gw.split('.').slice(0, 3).join('.')));
});

test.afterEach.always((t) => {
  if (t.passed) return;
  for (const a of c?.agents ?? []) t.log(`${a.hostname}: exit ${a.proc.exitCode} ${a.proc.signalCode ?? ''}\n${a.log().slice(-3000)}`);
});

test.after.always(async () => {
  upstream?.kill('SIGKILL');
  if (netnsDir) rmSync(netnsDir, { recursive: true, force: true });
  await c?.destroy();
});

test.serial('dig against a gateway, UDP and TCP: VIP, tasks.NAME, NAME.NETWORK, task names, PTR, AAAA, NXDOMAIN', async (t) => {
  const web = await taskAddrs(c, 'web', 'appnet');
  const addrs = web.map((w) => w.addr).sort();
  for (const i of [0, 1, 2]) {
    for (const tcp of [false, true]) {
      const how = `host ${i + 1} ${tcp ? 'TCP' : 'UDP'}`;
      const a = await waitFor(`web on ${how}`, async () => { const r = await dig(c, host(i), gw, 'web', { tcp }); return r.answers.length ? r : undefined; });
      t.deepEqual(a.answers, [vip], `${how}: web is the VIP`);
      t.deepEqual((await dig(c, host(i), gw, 'tasks.web', { tcp })).answers, addrs, `${how}: tasks.web`);
      t.deepEqual((await dig(c, host(i), gw, 'web.appnet', { tcp })).answers, [vip], `${how}: web.appnet`);
    }
  }
  const one = web[0]!;
  const slot = JSON.parse(await ok(['inspect', '--type', 'task', one.id]))[0].Slot;
  t.deepEqual((await dig(c, host(0), gw, `web.${slot}.${one.id}`)).answers, [one.addr], 'task name');
  const ptr = await dig(c, host(0), gw, vip.split('.').reverse().join('.') + '.in-addr.arpa', { type: 'PTR' });
  t.deepEqual(ptr.answers, ['web.appnet.'], 'PTR of the VIP');
  const aaaa = await dig(c, host(0), gw, 'web', { type: 'AAAA' });
  t.is(aaaa.status, 'NOERROR');
  t.deepEqual(aaaa.answers, []);
  t.is((await dig(c, host(0), gw, 'nosuchservice')).status, 'NXDOMAIN');
  t.is((await dig(c, host(0), gw, 'tasks.nosuchservice', { tcp: true })).status, 'NXDOMAIN');
});

test.serial('inside tasks (busybox nslookup): VIP, three task addresses, dnsrr without a VIP', async (t) => {
  const client = await clientOn(2);
  t.deepEqual((await nslookup(client, 'web')).addrs, [vip]);
  t.deepEqual((await nslookup(client, 'tasks.web')).addrs, (await taskAddrs(c, 'web', 'appnet')).map((w) => w.addr).sort());
  const rr = (await taskAddrs(c, 'rr', 'appnet')).map((w) => w.addr).sort();
  const s = JSON.parse(await ok(['service', 'inspect', 'rr']))[0];
  t.deepEqual(s.Endpoint.VirtualIPs ?? [], [], 'a dnsrr service has no VIP');
  t.deepEqual((await nslookup(client, 'rr')).addrs, rr, 'rr answers its task addresses');
  t.deepEqual((await nslookup(client, 'tasks.rr')).addrs, rr);
});

test.serial('names are scoped to networks: a task on another network gets NXDOMAIN', async (t) => {
  const [lonely] = await waitRunning(c, 'lonely', 'othernet', 1);
  const cid = lonely!.container!;
  const diagnose = async () => {
    const i = hostIndexOf(c, lonely!.nodeId);
    t.log((await c.exec(cid, 'ip addr; ip route; cat /etc/resolv.conf')).stdout);
    t.log((await c.lab.exec(host(i), ['sh', '-c', 'ip -br addr; ss -lnup; ss -lntp'])).stdout);
    t.log(c.agents[i]!.log().slice(-4000));
  };
  for (const name of ['web', 'tasks.web', 'rr']) {
    // the answer must be NXDOMAIN (retried only while the task's network is not up yet)
    const r = await waitFor(`an answer for ${name} on othernet`, async () => { const x = await nslookup(cid, name); return /can't connect/.test(x.out) ? undefined : x; }, { timeoutMs: 45_000 })
      .catch(async (err) => { await diagnose(); throw err; });
    t.not(r.code, 0, `${name} must not resolve on othernet: ${r.out}`);
    t.regex(r.out, /NXDOMAIN/, r.out);
  }
  t.deepEqual((await nslookup(cid, 'lonely')).addrs.length, 1, 'its own service resolves');
  const other = (await subnetOf(c, 'othernet')).gateway;
  const i = hostIndexOf(c, lonely!.nodeId);
  t.is((await dig(c, host(i), other, 'web')).status, 'NXDOMAIN', 'dig from the othernet gateway');
  t.is((await dig(c, host(i), other, 'web', { tcp: true })).status, 'NXDOMAIN');
});

test.serial('other names are forwarded to the host resolver (an upstream this test runs)', async (t) => {
  for (const tcp of [false, true]) {
    const r = await waitFor('forwarded answer', async () => { const x = await dig(c, host(1), gw, 'www.upstream.test', { tcp }); return x.answers.length ? x : undefined; });
    t.deepEqual(r.answers, [UPSTREAM_ADDR], tcp ? 'TCP' : 'UDP');
  }
  t.deepEqual((await nslookup(await clientOn(1), 'upstream.test')).addrs, [UPSTREAM_ADDR], 'from a task on that host');
});

/** tasks.NAME as every host's gateway answers it equals `want` (bounded wait) */
async function everyHostAnswers(name: string, pred: (answers: string[]) => boolean, what: string): Promise<number[]> {
  const t0 = Date.now();
  return Promise.all(c.lab.hosts.map((h) => waitFor(`${what} on ${h.name}`, async () => (pred((await dig(c, h, gw, name)).answers) ? Date.now() - t0 : undefined), { timeoutMs: 60_000, intervalMs: 100 })));
}

test.serial('answers follow scale down and up on every host', async (t) => {
  await ok(['service', 'scale', '--detach', 'web=1']);
  const [left] = await waitRunning(c, 'web', 'appnet', 1);
  const down = await everyHostAnswers('tasks.web', (a) => a.length === 1 && a[0] === left!.addr, 'tasks.web = 1 address');
  await ok(['service', 'scale', '--detach', 'web=3']);
  const now = (await waitRunning(c, 'web', 'appnet', 3)).map((w) => w.addr).sort();
  const up = await everyHostAnswers('tasks.web', (a) => JSON.stringify(a) === JSON.stringify(now), 'tasks.web = 3 addresses');
  t.log(`ms from the API showing the change to every host answering it: down ${down.join('/')}, up ${up.join('/')}`);
  t.pass();
});

test.serial('only healthy tasks are answered: starting tasks are absent, a task failing its check disappears', async (t) => {
  const hc = ['--health-interval', '1s', '--health-timeout', '1s', '--health-retries', '1'];
  await svc('hc', 'appnet', ['--replicas', '2', '--health-cmd', 'test -f /tmp/ok', ...hc], ['local/busybox:1', 'sh', '-c', 'touch /tmp/ok; exec httpd -f -p 80 -h /www']);
  await svc('sick', 'appnet', ['--replicas', '1', '--health-cmd', 'test -f /tmp/never', '--health-start-period', '120s', ...hc]);
  const tasks = await waitRunning(c, 'hc', 'appnet', 2);
  await everyHostAnswers('tasks.hc', (a) => JSON.stringify(a) === JSON.stringify(tasks.map((x) => x.addr).sort()), 'both hc tasks');
  // sick: its container runs, its task stays `starting`, so nothing is answered for it
  let seen = '';
  const sickCid = await waitFor('sick task started', async () => {
    const ts = await taskAddrs(c, 'sick', 'appnet');
    seen = JSON.stringify(ts);
    if (ts.length !== 1 || ts[0]!.state !== 'starting') return undefined;
    const i = hostIndexOf(c, ts[0]!.nodeId);
    return (await c.containersOf(c.agents[i]!, 'sick'))[0];
  }).catch((err) => { throw new Error(`${err.message}; tasks: ${seen}`); });
  t.is((await hostDocker(['inspect', '-f', '{{.State.Running}}', sickCid])).stdout.trim(), 'true');
  for (const i of [0, 1, 2]) t.deepEqual((await dig(c, host(i), gw, 'tasks.sick')).answers, [], `host ${i + 1}: a starting task is not answered`);
  // make one hc task unhealthy
  const victim = tasks[0]!;
  const all = (await Promise.all(c.agents.map((a) => c.containersOf(a, 'hc')))).flat();
  const addrOf = async (cid: string) => (await hostDocker(['exec', cid, 'sh', '-c', 'ip -o -4 addr show dev eth0'])).stdout;
  let target: string | undefined;
  for (const cid of all) if ((await addrOf(cid)).includes(` ${victim.addr}/`)) target = cid;
  t.truthy(target, `the container of ${victim.addr}`);
  await hostDocker(['exec', target!, 'rm', '/tmp/ok']);
  const gone = await everyHostAnswers('tasks.hc', (a) => !a.includes(victim.addr), 'the unhealthy task gone');
  t.log(`ms from breaking the check to every host dropping the task: ${gone.join('/')}`);
  const state = JSON.parse(await ok(['inspect', '--type', 'task', victim.id]))[0].Status.State;
  t.is(state, 'failed', 'the unhealthy task failed');
  await ok(['service', 'rm', 'hc', 'sick']);
});

test.serial('24 requests through the VIP reach all 3 replicas, backends see the client address, and hairpin works', async (t) => {
  const client = await clientOn(0);
  const [clientTask] = (await taskAddrs(c, 'client', 'appnet')).filter((x) => hostIndexOf(c, x.nodeId) === 0);
  const hosts = new Map<string, number>();
  for (let i = 0; i < 24; i++) {
    const r = await c.exec(client, 'timeout 5 wget -qO- http://web/cgi-bin/whoami');
    t.is(r.code, 0, r.stderr);
    const h = /host=(\S+)/.exec(r.stdout)?.[1] ?? '?';
    hosts.set(h, (hosts.get(h) ?? 0) + 1);
    t.true(r.stdout.includes(clientTask!.addr), `the backend sees the client's own address: ${r.stdout}`);
  }
  t.log(`requests per replica: ${[...hosts.values()].join(', ')}`);
  t.is(hosts.size, 3, 'all three replicas answered');
  // hairpin: a web task calls its own service's VIP; round robin brings it back to itself too
  const web = await taskContainer('web', 'appnet');
  const self = (await c.exec(web, 'hostname')).stdout.trim();
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const r = await c.exec(web, 'timeout 5 wget -qO- http://web/cgi-bin/whoami');
    t.is(r.code, 0, `hairpin request ${i}: ${r.stderr}`);
    seen.add(/host=(\S+)/.exec(r.stdout)?.[1] ?? '?');
  }
  t.true(seen.has(self), `a request came back to the caller itself (${[...seen]} vs ${self})`);
});

test.serial('the DNS server keeps answering after thousands of random and truncated packets (seed 4242)', async (t) => {
  const out = JSON.parse(await runInHost(host(0), 'net-fuzz', [gw, '53', '4242', '5000'], 120_000));
  t.is(out.udp, 5000);
  for (const tcp of [false, true]) t.deepEqual((await dig(c, host(0), gw, 'web', { tcp })).answers, [vip], `still answers over ${tcp ? 'TCP' : 'UDP'}`);
  t.deepEqual((await dig(c, host(0), gw, 'tasks.web')).answers.length, 3);
  t.is(c.agents[0]!.proc.exitCode, null, 'the agent is alive');
});
