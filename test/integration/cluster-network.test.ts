// Networking end to end on a 3-host lab (each host a network namespace with
// its own `shoal agent`, all sharing the machine's dockerd): an overlay
// network across hosts, service DNS and VIPs from inside containers, and the
// routing mesh answering on every host's published port.
import test from 'ava';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import type { TestAgent } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';

let c: LabCluster;
let agents: TestAgent[];
const ok = (args: string[], a?: TestAgent) => c.ok(args, a);
const containerOf = async (a: TestAgent, service: string) => (await c.containersOf(a, service))[0];
const inContainer = (cid: string, script: string) => c.exec(cid, script);

test.before(async () => {
  c = await createLabCluster(3);
  agents = c.agents;
  await ok(['network', 'create', '-d', 'overlay', 'appnet']);
  await ok(['service', 'create', '--detach', '--name', 'web', '--network', 'appnet', '--replicas', '2', '--replicas-max-per-node', '1',
    '--publish', '8080:80', '--stop-grace-period', '1s', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  await ok(['service', 'create', '--detach', '--name', 'client', '--network', 'appnet', '--mode', 'global', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('web 2/2 and client 3/3', async () => {
    const out = await ok(['service', 'ls', '--format', '{{.Name}} {{.Replicas}}']);
    return out.includes('web 2/2') && out.includes('client 3/3');
  }, { timeoutMs: 90_000 });
});

test.after.always(async () => {
  await c?.destroy();
});

test.serial('containers on different hosts reach each other over the overlay', async (t) => {
  const webTasks = (await ok(['service', 'ps', 'web', '-q', '--filter', 'desired-state=running'])).trim().split('\n');
  t.is(webTasks.length, 2);
  for (const a of agents) {
    const client = await containerOf(a, 'client');
    t.truthy(client, `client runs on ${a.hostname}`);
    for (const id of webTasks) {
      const inspect = JSON.parse(await ok(['inspect', '--type', 'task', id]))[0];
      const addr = (inspect.NetworksAttachments as { Network: { Spec: { Name: string } }; Addresses: string[] }[]).find((x) => x.Network.Spec.Name === 'appnet')!.Addresses[0].split('/')[0];
      const r = await waitFor(`${a.hostname} reaches ${addr}`, async () => {
        const x = await inContainer(client, `timeout 5 wget -qO- http://${addr}/`);
        return x.code === 0 ? x : undefined;
      }, { timeoutMs: 20_000 });
      t.is(r.stdout.trim(), 'hello from busybox:1');
    }
  }
});

test.serial('service names resolve inside containers: VIP, tasks.NAME, and HTTP through the VIP', async (t) => {
  const client = await containerOf(agents[2], 'client');
  const vip = await waitFor('web resolves', async () => {
    const r = await inContainer(client, 'nslookup web');
    return r.code === 0 ? /Address( 1)?:\s+(10\.\d+\.\d+\.\d+)/.exec(r.stdout.split('Name:')[1] ?? '')?.[2] : undefined;
  });
  const svc = JSON.parse(await ok(['service', 'inspect', 'web']))[0];
  const vips = (svc.Endpoint.VirtualIPs as { Addr: string }[]).map((v) => v.Addr.split('/')[0]);
  t.true(vips.includes(vip), `${vip} is one of ${vips}`);
  const tasks = await inContainer(client, 'nslookup tasks.web');
  t.is(new Set([...tasks.stdout.matchAll(/Name:\s+tasks\.web\s+Address:\s+(10\.\d+\.\d+\.\d+)/g)].map((m) => m[1])).size, 2, tasks.stdout);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const r = await inContainer(client, 'timeout 5 wget -qO- http://web/cgi-bin/whoami');
    t.is(r.code, 0, r.stderr);
    seen.add(/host=(\S+)/.exec(r.stdout)?.[1] ?? '');
  }
  t.is(seen.size, 2, 'the VIP balances over both replicas');
});

test.serial('the routing mesh answers on every host, whichever host runs the replicas', async (t) => {
  for (const h of c.lab.hosts) {
    const r = await waitFor(`mesh on ${h.name}`, async () => {
      const x = await c.lab.exec(c.lab.hosts[(c.lab.hosts.indexOf(h) + 1) % 3], ['timeout', '5', 'wget', '-qO-', `http://${h.addr}:8080/`]).catch(() => undefined);
      return x;
    }, { timeoutMs: 20_000 });
    t.is(r.stdout.trim(), 'hello from busybox:1');
  }
});

test.serial('a node that leaves the swarm takes its overlays, veths and rules with it', async (t) => {
  const host = c.lab.hosts[2];
  const links = async () => (await c.lab.exec(host, ['ip', '-br', 'link'])).stdout.split('\n').filter((l) => /^sh[bvc]/.test(l));
  t.true((await links()).length > 0, 'the worker serves overlays before it leaves');
  await ok(['swarm', 'leave'], agents[2]);
  t.deepEqual(await links(), []);
  t.notRegex((await c.lab.exec(host, ['/usr/sbin/nft', 'list', 'tables'])).stdout, /shoal/);
});
