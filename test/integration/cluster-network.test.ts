// Networking end to end on a 3-host lab (each host a network namespace with
// its own `shoal agent`, all sharing the machine's dockerd): an overlay
// network across hosts, service DNS and VIPs from inside containers, and the
// routing mesh answering on every host's published port.
import test from 'ava';
import { createLab, type Lab } from '../helpers/lab.js';
import { startAgent, type TestAgent } from '../helpers/agent.js';
import { hostDocker } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

let lab: Lab;
const agents: TestAgent[] = [];

async function ok(a: TestAgent, args: string[]): Promise<string> {
  const r = await a.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** a running container of `service` on the agent's node */
async function containerOf(a: TestAgent, service: string): Promise<string> {
  const r = await hostDocker(['ps', '-q', '--filter', `label=com.docker.swarm.node.id=${a.nodeId()}`, '--filter', `label=com.docker.swarm.service.name=${service}`]);
  return r.stdout.split('\n').filter(Boolean)[0];
}

async function inContainer(cid: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return hostDocker(['exec', cid, 'sh', '-c', script], { timeoutMs: 20_000 });
}

test.before(async () => {
  lab = await createLab(3);
  for (const [i, h] of lab.hosts.entries()) {
    agents.push(await startAgent(`n${i + 1}`, ['--listen-addr', `${h.addr}:2377`, '--advertise-addr', h.addr], { netns: h.name }));
  }
  const [mgr, ...workers] = agents;
  const init = await ok(mgr, ['swarm', 'init', '--advertise-addr', `${lab.hosts[0].addr}:2377`, '--listen-addr', `${lab.hosts[0].addr}:2377`]);
  const token = /--token (\S+)/.exec(init)![1];
  for (const w of workers) await ok(w, ['swarm', 'join', '--token', token, `${lab.hosts[0].addr}:2377`]);
  await waitFor('3 ready nodes', async () => (await ok(mgr, ['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((l) => l === 'Ready').length === 3);
  await ok(mgr, ['network', 'create', '-d', 'overlay', 'appnet']);
  await ok(mgr, ['service', 'create', '--detach', '--name', 'web', '--network', 'appnet', '--replicas', '2', '--replicas-max-per-node', '1',
    '--publish', '8080:80', '--stop-grace-period', '1s', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  await ok(mgr, ['service', 'create', '--detach', '--name', 'client', '--network', 'appnet', '--mode', 'global', '--stop-grace-period', '1s', 'local/busybox:1', 'sleep', '3600']);
  await waitFor('web 2/2 and client 3/3', async () => {
    const out = await ok(mgr, ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}']);
    return out.includes('web 2/2') && out.includes('client 3/3');
  }, { timeoutMs: 90_000 });
});

test.after.always(async () => {
  for (const a of agents) await a.cleanup();
  await lab?.destroy();
});

test.serial('containers on different hosts reach each other over the overlay', async (t) => {
  const webTasks = (await ok(agents[0], ['service', 'ps', 'web', '-q', '--filter', 'desired-state=running'])).trim().split('\n');
  t.is(webTasks.length, 2);
  for (const a of agents) {
    const client = await containerOf(a, 'client');
    t.truthy(client, `client runs on ${a.hostname}`);
    for (const id of webTasks) {
      const inspect = JSON.parse(await ok(agents[0], ['inspect', '--type', 'task', id]))[0];
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
  const svc = JSON.parse(await ok(agents[0], ['service', 'inspect', 'web']))[0];
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
  for (const h of lab.hosts) {
    const r = await waitFor(`mesh on ${h.name}`, async () => {
      const x = await lab.exec(lab.hosts[(lab.hosts.indexOf(h) + 1) % 3], ['timeout', '5', 'wget', '-qO-', `http://${h.addr}:8080/`]).catch(() => undefined);
      return x;
    }, { timeoutMs: 20_000 });
    t.is(r.stdout.trim(), 'hello from busybox:1');
  }
});
