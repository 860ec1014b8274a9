// Proofs of the overlay (issue 4) on a 3-host lab cluster: traffic between
// hosts is VXLAN on UDP 4789 (nft counters in the hosts), a second overlay
// cannot reach the first, scaling and removal leave no kernel objects behind,
// and a kill -9 + restart of the agents keeps an open TCP connection alive.
import test from 'ava';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { hostIndexOf, kernelObjects, subnetOf, taskAddrs, vniOf, vxlanPeers, waitRunning, type KernelObjects } from '../helpers/net-cluster.js';

let c: LabCluster;
const ok = (args: string[]) => c.ok(args);
const HTTPD = ['local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www'];
const svc = (name: string, net: string, extra: string[], cmd = HTTPD) =>
  ok(['service', 'create', '--detach', '--name', name, '--network', net, '--stop-grace-period', '1s', ...extra, ...cmd]);
const wget = (cid: string, url: string, secs = 5) => c.exec(cid, `timeout ${secs} wget -qO- ${url}`);

test.before(async () => {
  c = await createLabCluster(3);
  await ok(['network', 'create', '-d', 'overlay', 'appnet']);
  await svc('web', 'appnet', ['--replicas', '3', '--replicas-max-per-node', '1']);
  await svc('client', 'appnet', ['--mode', 'global']);
  await waitRunning(c, 'web', 'appnet', 3);
  await waitRunning(c, 'client', 'appnet', 3);
});

test.after.always(async () => {
  await c?.destroy();
});

const clientOn = async (i: number) => (await c.containersOf(c.agents[i]!, 'client'))[0]!;

test.serial('traffic between hosts is VXLAN on UDP 4789; no bare overlay packet crosses the underlay', async (t) => {
  const { subnet } = await subnetOf(c, 'appnet');
  const table = `netproof${Math.random().toString(36).slice(2, 7)}`;
  const script = [
    `add table ip ${table}`,
    `add chain ip ${table} in { type filter hook input priority -300; policy accept; }`,
    `add rule ip ${table} in iifname "eth0" udp dport 4789 counter`,
    `add rule ip ${table} in iifname "eth0" ip saddr ${subnet} counter`,
    `add rule ip ${table} in iifname "eth0" ip daddr ${subnet} counter`,
  ].join('\n');
  for (const h of c.lab.hosts) await c.lab.exec(h, ['sh', '-c', `echo '${script}' | nft -f -`]);
  t.teardown(async () => {
    for (const h of c.lab.hosts) await c.lab.exec(h, ['nft', 'delete', 'table', 'ip', table]).catch(() => undefined);
  });
  const web = await taskAddrs(c, 'web', 'appnet');
  const client = await clientOn(0);
  let remote = 0;
  for (const w of web) {
    if (hostIndexOf(c, w.nodeId) === 0) continue;
    remote++;
    const r = await waitFor(`host 1 reaches ${w.addr}`, async () => ((await wget(client, `http://${w.addr}/`)).code === 0 ? true : undefined));
    t.true(r);
    for (let i = 0; i < 5; i++) t.is((await wget(client, `http://${w.addr}/`)).stdout.trim(), 'hello from busybox:1');
  }
  t.true(remote >= 2, 'two replicas run on other hosts');
  for (const [i, h] of c.lab.hosts.entries()) {
    const out = (await c.lab.exec(h, ['nft', 'list', 'table', 'ip', table])).stdout;
    const counts = [...out.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
    t.is(counts.length, 3, out);
    t.log(`host ${i + 1}: ${counts[0]} VXLAN packets in on eth0, ${counts[1] + counts[2]} bare overlay packets`);
    if (i > 0) t.true(counts[0]! > 0, `host ${i + 1} received VXLAN packets`);
    t.is(counts[1], 0, `host ${i + 1}: no packet from the overlay subnet arrives unencapsulated`);
    t.is(counts[2], 0, `host ${i + 1}: no packet to the overlay subnet arrives unencapsulated`);
  }
});

test.serial('a task on a second overlay cannot reach the first; each network works within itself', async (t) => {
  await ok(['network', 'create', '-d', 'overlay', 'othernet']);
  await svc('other', 'othernet', ['--mode', 'global']);
  const others = await waitRunning(c, 'other', 'othernet', 3);
  const web = await taskAddrs(c, 'web', 'appnet');
  const otherOn0 = (await c.containersOf(c.agents[0]!, 'other'))[0]!;
  // positive controls: othernet reaches its own remote task, appnet reaches web
  const remoteOther = others.find((o) => hostIndexOf(c, o.nodeId) !== 0)!;
  await waitFor('othernet works across hosts', async () => ((await wget(otherOn0, `http://${remoteOther.addr}/`)).code === 0 ? true : undefined));
  for (const w of web) {
    t.is((await wget(await clientOn(0), `http://${w.addr}/`)).code, 0, `appnet client reaches ${w.addr}`);
    const r = await wget(otherOn0, `http://${w.addr}/`, 3);
    t.not(r.code, 0, `othernet task must not reach appnet task ${w.addr} (host ${hostIndexOf(c, w.nodeId) + 1})`);
  }
  await ok(['service', 'rm', 'other']);
  await waitFor('othernet can be removed', async () => (await c.agents[0]!.docker(['network', 'rm', 'othernet'])).code === 0, { timeoutMs: 30_000 });
});

test.serial('scaling and removal leave no kernel objects behind', async (t) => {
  const settle = async (what: string, want: KernelObjects[]) => waitFor(what, async () => {
    const now = await Promise.all(c.lab.hosts.map((h) => kernelObjects(c, h)));
    return JSON.stringify(now) === JSON.stringify(want) ? now : undefined;
  }, { timeoutMs: 30_000, intervalMs: 500 });
  // baseline: appnet (web + client) and ingress, once the kernel is stable
  const baseline = await waitFor('a stable baseline', async () => {
    const now = await Promise.all(c.lab.hosts.map((h) => kernelObjects(c, h)));
    await new Promise((r) => setTimeout(r, 1000));
    const again = await Promise.all(c.lab.hosts.map((h) => kernelObjects(c, h)));
    return JSON.stringify(now) === JSON.stringify(again) ? now : undefined;
  }, { timeoutMs: 30_000 });

  await ok(['network', 'create', '-d', 'overlay', 'tmpnet']);
  const vni = await vniOf(c, 'tmpnet');
  let mismatch = '';
  const checkPeers = async (n: number) => {
    await waitRunning(c, 'tmp', 'tmpnet', n);
    await waitFor(`static peers for ${n} tmp tasks`, async () => {
      // tasks re-read each time: a rolling update replaces tasks (and addresses) after they first look settled
      const tasks = await taskAddrs(c, 'tmp', 'tmpnet');
      if (tasks.length !== n || tasks.some((x) => x.state !== 'running')) return (mismatch = 'tasks not settled'), undefined;
      const nodeAddrs = await Promise.all(c.lab.hosts.map(async (h) => (await c.lab.exec(h, ['sh', '-c', `ip -o -4 addr show dev shb${vni} 2>/dev/null | head -1`])).stdout.split(/\s+/)[3]?.split('/')[0]));
      for (const [i, h] of c.lab.hosts.entries()) {
        const local = tasks.filter((x) => hostIndexOf(c, x.nodeId) === i).length;
        const links = (await kernelObjects(c, h)).links;
        if (nodeAddrs[i] === undefined) {
          if (local || links.includes(`shb${vni}`)) return (mismatch = `host ${i + 1} has local tasks but no bridge`), undefined;
          continue;
        }
        const want = [
          ...tasks.filter((x) => hostIndexOf(c, x.nodeId) !== i).map((x) => x.addr),
          ...(nodeAddrs.filter((a, j) => j !== i && a !== undefined) as string[]),
        ].sort();
        const have = await vxlanPeers(c, h, vni);
        const veths = links.filter((l) => l.startsWith('shc')).length;
        if (JSON.stringify(have.neigh) !== JSON.stringify(want) || have.fdb.length !== want.length) {
          return (mismatch = `host ${i + 1}: neighbours ${have.neigh} fdb ${have.fdb.length}, want ${want}`), undefined;
        }
        if (veths < local) return (mismatch = `host ${i + 1}: ${veths} veths for ${local} local tasks`), undefined;
      }
      return true;
    }, { timeoutMs: 30_000, intervalMs: 500 }).catch((err) => { throw new Error(`${err.message}: ${mismatch}`); });
    t.pass(`peers exact with ${n} tasks`);
  };
  await svc('tmp', 'tmpnet', ['--replicas', '3', '--replicas-max-per-node', '1']);
  await checkPeers(3);
  await ok(['service', 'update', '--detach', '--replicas-max-per-node', '2', '--replicas', '6', 'tmp']);
  await checkPeers(6);
  await ok(['service', 'scale', '--detach', 'tmp=1']);
  await checkPeers(1);
  await ok(['service', 'rm', 'tmp']);
  await waitFor('tmpnet can be removed', async () => (await c.agents[0]!.docker(['network', 'rm', 'tmpnet'])).code === 0, { timeoutMs: 30_000 });
  const after = await settle('kernel objects back to the baseline on every host', baseline);
  for (const [i] of c.lab.hosts.entries()) {
    t.deepEqual(after[i]!.links, baseline[i]!.links, `host ${i + 1} links`);
    t.is(after[i]!.fdb.length, baseline[i]!.fdb.length, `host ${i + 1} FDB entries`);
    t.is(after[i]!.neigh.length, baseline[i]!.neigh.length, `host ${i + 1} neighbour entries`);
    t.is(after[i]!.rules, baseline[i]!.rules, `host ${i + 1} rules`);
  }
  t.log(`baseline per host: ${baseline.map((b) => `${b.links.length} links, ${b.fdb.length} fdb, ${b.neigh.length} neigh, ${b.rules} rule lines`).join(' | ')}`);
});

test.serial('kill -9 and restart of the agents keeps an open TCP connection between two tasks alive', async (t) => {
  const h2 = c.agents[1]!.hostname;
  const h3 = c.agents[2]!.hostname;
  await svc('echo', 'appnet', ['--constraint', `node.hostname==${h2}`], ['local/busybox:1', 'nc', '-l', '-p', '9000', '-e', 'cat']);
  await svc('talker', 'appnet', ['--constraint', `node.hostname==${h3}`], ['local/busybox:1', 'sh', '-c', 'mkfifo /tmp/in; exec sleep 3600']);
  // a node is declared down after 3 heartbeat periods and its tasks replaced: give the restart room
  await ok(['swarm', 'update', '--dispatcher-heartbeat', '10s']);
  t.teardown(() => ok(['swarm', 'update', '--dispatcher-heartbeat', '1s']).then(() => undefined, () => undefined));
  const [echo] = await waitRunning(c, 'echo', 'appnet', 1);
  await waitRunning(c, 'talker', 'appnet', 1);
  const talker = (await c.containersOf(c.agents[2]!, 'talker'))[0]!;
  const start = await c.exec(talker, `nc ${echo!.addr} 9000 </tmp/in >/tmp/out 2>&1 & sleep 3600 >/tmp/in & sleep 0.5; pidof nc`);
  t.is(start.code, 0, start.stderr);
  const ncPid = start.stdout.trim();
  t.truthy(ncPid, 'nc client runs');
  const say = async (line: string) => {
    await c.exec(talker, `echo ${line} >/tmp/in`);
    await waitFor(`echo of ${line}`, async () => (await c.exec(talker, 'cat /tmp/out')).stdout.includes(line), { timeoutMs: 15_000 });
  };
  await say('before-restart');
  await c.agents[1]!.kill('SIGKILL');
  await c.agents[2]!.kill('SIGKILL');
  await say('agents-down');
  await c.agents[1]!.restart();
  await c.agents[2]!.restart();
  // the agents re-adopt their tasks and reconcile the data plane
  await waitFor('nodes ready again', async () => (await ok(['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((l) => l === 'Ready').length === 3, { timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 3000));
  await say('after-restart');
  t.is((await c.exec(talker, 'pidof nc')).stdout.trim(), ncPid, 'the same nc process, so the same connection');
  t.deepEqual((await c.exec(talker, 'cat /tmp/out')).stdout.trim().split('\n'), ['before-restart', 'agents-down', 'after-restart']);
  const tasks = await taskAddrs(c, 'echo', 'appnet');
  t.is(tasks.length, 1);
  t.is(tasks[0]!.id, echo!.id, 'the echo task was never replaced');
  await ok(['service', 'rm', 'echo', 'talker']);
});
