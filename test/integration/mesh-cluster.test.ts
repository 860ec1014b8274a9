// The routing mesh on a real 3-host lab (each host a namespace running its own
// `shoal agent`, driven with the stock docker CLI), clients in lab host
// namespaces: every host answers a published port (also one without
// replicas), connections spread over all replicas, HTTP mode puts the client
// in X-Forwarded-For, PROXY protocol v1/v2 reaches an nginx that parses it,
// host mode binds only where the task runs, UDP round trip, and published-port
// conflicts and bad mesh labels are refused at create/update with nothing
// changed. Robustness (updates, kills, slowloris) is in mesh-cluster-drain.
import test from 'ava';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import type { LabHost } from '../helpers/lab.js';
import { waitFor } from '../helpers/wait.js';

let c: LabCluster;
let hosts: LabHost[];
let cfgDir: string;
const ok = (args: string[]) => c.ok(args);

/** host-namespace tools: rejects on a non-zero exit (err.code is the exit code) */
const inHost = (h: LabHost, argv: string[]) => c.lab.exec(h, argv, { timeoutMs: 20_000 });
const curl = async (from: LabHost, url: string) => (await inHost(from, ['curl', '-sS', '--max-time', '5', url])).stdout.trim();
const curlCode = (from: LabHost, url: string) =>
  inHost(from, ['curl', '-sS', '-o', '/dev/null', '--max-time', '5', url]).then(() => 0, (e: { code?: number }) => e.code ?? -1);

const PP_CONF = `user nobody nogroup; worker_processes 1; daemon off; error_log /dev/stderr warn; pid /run/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 80 proxy_protocol;
    location / { default_type text/plain; return 200 "proxy=$proxy_protocol_addr remote=$remote_addr host=$hostname\\n"; }
  }
}
`;

// a UDP echo in a busybox task: the host's socat (same filesystem) run through the host's loader
const LD = '/host/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2';
const UDP_ECHO = ['--mount', 'type=bind,src=/usr,dst=/host/usr,readonly', '--entrypoint', LD, 'local/busybox:1',
  '--library-path', '/host/usr/lib/x86_64-linux-gnu', '/host/usr/bin/socat', 'UDP4-RECVFROM:53,fork', 'SYSTEM:read l; echo "$l $(hostname)"'];

test.before(async () => {
  c = await createLabCluster(3);
  hosts = c.lab.hosts;
  const [, a2, a3] = c.agents;
  cfgDir = mkdtempSync(join(tmpdir(), 'shoal-mesh-cluster-'));
  writeFileSync(join(cfgDir, 'nginx.conf'), PP_CONF);
  const base = ['service', 'create', '--detach', '--stop-grace-period', '1s'];
  // web: two replicas, never on host 3
  await ok([...base, '--name', 'web', '--replicas', '2', '--replicas-max-per-node', '1', '--constraint', `node.hostname!=${a3.hostname}`,
    '--publish', '8080:80', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  await ok([...base, '--name', 'webhttp', '--replicas', '2', '--label', 'shoal.lb.mode=http', '--publish', '8081:80', 'local/nginx:1']);
  await ok([...base, '--name', 'pp', '--replicas', '2', '--label', 'shoal.lb.proxy-protocol=v1', '--publish', '8082:80',
    '--mount', `type=bind,src=${cfgDir},dst=/cfg,readonly`, 'local/nginx:1', '/usr/sbin/nginx', '-c', '/cfg/nginx.conf']);
  // host mode: the allocator gives ingress addresses only to ingress-published services, so this task
  // gets an address from its own overlay
  await ok(['network', 'create', '-d', 'overlay', 'appnet']);
  await ok([...base, '--name', 'hostm', '--network', 'appnet', '--constraint', `node.hostname==${a2.hostname}`,
    '--publish', 'mode=host,target=80,published=8083', 'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www']);
  await ok([...base, '--name', 'udp', '--replicas', '2', '--publish', '5353:53/udp', ...UDP_ECHO]);
  await waitFor('all services converged', async () => {
    const out = await ok(['service', 'ls', '--format', '{{.Name}} {{.Replicas}}']);
    return ['web 2/2', 'webhttp 2/2', 'pp 2/2', 'hostm 1/1', 'udp 2/2'].every((s) => out.includes(s));
  }, { timeoutMs: 100_000 });
});

test.after.always(async () => {
  await c?.destroy();
  if (cfgDir) rmSync(cfgDir, { recursive: true, force: true });
});

test.serial('every host answers a published port, including the one without replicas', async (t) => {
  const ps = await ok(['service', 'ps', 'web', '--filter', 'desired-state=running', '--format', '{{.Node}}']);
  t.false(ps.includes(c.agents[2].hostname), 'host 3 runs no web replica');
  t.is((await ok(['service', 'ls', '--filter', 'name=web', '--format', '{{.Name}} {{.Ports}}'])).split('\n').find((l) => l.startsWith('web '))?.trim(), 'web *:8080->80/tcp');
  for (const [i, h] of hosts.entries()) {
    const from = hosts[(i + 1) % 3];
    const body = await waitFor(`mesh on ${h.name}`, () => curl(from, `http://${h.addr}:8080/`).catch(() => undefined), { timeoutMs: 20_000 });
    t.is(body, 'hello from busybox:1');
  }
});

test.serial('connections spread over all replicas from every entry host', async (t) => {
  const replicas = new Set<string>();
  for (const h of hosts) {
    const seen = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      const out = await curl(hosts[2], `http://${h.addr}:8080/cgi-bin/whoami`);
      const host = /host=(\S+)/.exec(out)?.[1] ?? '?';
      seen.set(host, (seen.get(host) ?? 0) + 1);
    }
    t.is(seen.size, 2, `via ${h.name}: ${JSON.stringify([...seen])}`);
    t.deepEqual([...seen.values()], [3, 3], 'round robin per connection');
    for (const k of seen.keys()) replicas.add(k);
  }
  t.is(replicas.size, 2);
});

test.serial('HTTP mode: the client address (a lab host) arrives in X-Forwarded-For, on every entry host', async (t) => {
  const client = hosts[2];
  const replicas = new Set<string>();
  for (const h of hosts) {
    for (let i = 0; i < 4; i++) {
      const out = await waitFor(`HTTP mode via ${h.name}`, () => curl(client, `http://${h.addr}:8081/ip`).catch(() => undefined), { timeoutMs: 20_000 });
      const m = /^remote=(\S+) xff=(\S*) host=(\S+)$/.exec(out);
      t.truthy(m, out);
      t.is(m![2], client.addr, out);
      t.not(m![1], client.addr, 'the backend sees the mesh, the header carries the client');
      replicas.add(m![3]);
    }
  }
  t.is(replicas.size, 2, 'per-request balancing reached both replicas');
});

test.serial('PROXY protocol v1 and v2 reach an nginx that parses them (listen proxy_protocol)', async (t) => {
  const client = hosts[0];
  for (const h of hosts) {
    const out = await waitFor(`pp via ${h.name}`, () => curl(client, `http://${h.addr}:8082/`).catch(() => undefined), { timeoutMs: 20_000 });
    t.regex(out, new RegExp(`^proxy=${client.addr.replaceAll('.', '\\.')} remote=`), out);
  }
  // a label-only change: tasks keep running, the mesh switches to v2 (nginx accepts either)
  await ok(['service', 'update', '--detach', '--label-add', 'shoal.lb.proxy-protocol=v2', 'pp']);
  for (const h of hosts) {
    const out = await curl(hosts[1], `http://${h.addr}:8082/`);
    t.regex(out, new RegExp(`^proxy=${hosts[1].addr.replaceAll('.', '\\.')} remote=`), out);
  }
  t.is((await ok(['service', 'ps', 'pp', '-q', '--filter', 'desired-state=running'])).trim().split('\n').length, 2);
});

test.serial('host mode binds only on the host that runs the task, straight to it', async (t) => {
  t.is(await waitFor('host-mode port on host 2', () => curl(hosts[0], `http://${hosts[1].addr}:8083/`).catch(() => undefined), { timeoutMs: 20_000 }), 'hello from busybox:1');
  for (const h of [hosts[0], hosts[2]]) {
    t.is(await curlCode(hosts[1], `http://${h.addr}:8083/`), 7, `${h.name} refuses 8083 (curl exit 7)`);
    t.is((await inHost(h, ['ss', '-Hltn', 'sport = :8083'])).stdout.trim(), '', `${h.name} does not listen on 8083`);
  }
  t.not((await inHost(hosts[1], ['ss', '-Hltn', 'sport = :8083'])).stdout.trim(), '');
  const ep = JSON.parse(await ok(['service', 'inspect', 'hostm']))[0].Endpoint;
  t.like(ep.Ports[0], { PublishMode: 'host', PublishedPort: 8083, TargetPort: 80, Protocol: 'tcp' });
});

test.serial('UDP: a datagram round trip through every host, flows spread over both replicas', async (t) => {
  const replicas = new Set<string>();
  for (const h of hosts) {
    for (let i = 0; i < 3; i++) {
      // a fresh client socket (new source port) per datagram: a new flow each time
      const out = await waitFor(`UDP via ${h.name}`, async () => {
        const r = await inHost(hosts[(hosts.indexOf(h) + 1) % 3], ['sh', '-c', `echo ping${i} | timeout 5 socat -T3 - UDP4:${h.addr}:5353`]).catch(() => undefined);
        return r?.stdout.trim() || undefined;
      }, { timeoutMs: 20_000 });
      const m = /^ping(\d) (\S+)$/.exec(out);
      t.truthy(m, out);
      t.is(m![1], String(i));
      replicas.add(m![2]);
    }
  }
  t.is(replicas.size, 2, [...replicas].join(','));
});

function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: { message?: string } & Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: c.manager.socket, method, path, headers: { 'content-type': 'application/json' }, timeout: 20_000 }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve({ status: res.statusCode!, json: s ? JSON.parse(s) : {} }));
    });
    req.on('timeout', () => req.destroy(new Error('API timeout')));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  Name: name,
  TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1', Args: ['httpd', '-f', '-p', '80', '-h', '/www'] } },
  ...extra,
});

test.serial('published-port conflicts and bad mesh labels: 400 at create and update, nothing changed', async (t) => {
  const before = await ok(['service', 'ls', '--format', '{{.Name}}']);
  const refused = async (body: unknown, words: RegExp) => {
    const r = await api('POST', '/v1.41/services/create', body);
    t.is(r.status, 400, JSON.stringify(r.json));
    t.regex(r.json.message ?? '', words);
  };
  const ports = (Ports: unknown[]) => ({ EndpointSpec: { Ports } });
  await refused(spec('dup', ports([{ TargetPort: 80, PublishedPort: 8080 }])), /port '8080' is already in use by service 'web'/);
  await refused(spec('dup', ports([{ TargetPort: 80, PublishedPort: 8083 }])), /already in use by service 'hostm'.*host-published/);
  await refused(spec('dup', ports([{ TargetPort: 80, PublishedPort: 8080, PublishMode: 'host' }])), /already in use by service 'web'.*ingress/);
  await refused(spec('dup', ports([{ TargetPort: 53, PublishedPort: 4789, Protocol: 'udp' }])), /reserved: shoal uses it for the overlay data path/);
  await refused(spec('dup', ports([{ TargetPort: 80, PublishedPort: 2377 }])), /reserved: shoal uses it for cluster management/);
  await refused(spec('dup', { Labels: { 'shoal.lb.mode': 'udp' } }), /label shoal\.mesh\.mode must be tcp or http/);
  await refused(spec('dup', { Labels: { 'shoal.lb.proxy-protocol': 'v3' } }), /must be v1 or v2/);
  await refused(spec('dup', { Labels: { 'shoal.lb.mode': 'http', 'shoal.lb.proxy-protocol': 'v1' } }), /TCP mode only/);
  // the CLI shows the daemon's words
  const cli = await c.manager.docker(['service', 'create', '--detach', '--name', 'dup', '-p', '8081:80', 'local/busybox:1']);
  t.not(cli.code, 0);
  t.regex(cli.stderr, /port '8081' is already in use by service 'webhttp'/);

  // updates: take web's port, or a bad label; the stored service stays as it was
  const inspect = async () => JSON.parse(await ok(['service', 'inspect', 'hostm']))[0] as { Version: { Index: number }; Spec: Record<string, unknown> };
  const cur = await inspect();
  const upd = (s: unknown) => api('POST', `/v1.41/services/hostm/update?version=${cur.Version.Index}`, s);
  let r = await upd({ ...cur.Spec, EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } });
  t.is(r.status, 400);
  t.regex(r.json.message ?? '', /port '8080' is already in use by service 'web'/);
  r = await upd({ ...cur.Spec, Labels: { 'shoal.lb.mode': 'https' } });
  t.is(r.status, 400);
  t.regex(r.json.message ?? '', /must be tcp or http/);
  const cliUpd = await c.manager.docker(['service', 'update', '--detach', '--label-add', 'shoal.lb.mode=quic', 'web']);
  t.not(cliUpd.code, 0);
  t.regex(cliUpd.stderr, /must be tcp or http/);
  const after = await inspect();
  t.is(after.Version.Index, cur.Version.Index, 'hostm not written');
  t.deepEqual(after.Spec, cur.Spec);
  t.is(await ok(['service', 'ls', '--format', '{{.Name}}']), before, 'no service created');
  t.is(await curl(hosts[0], `http://${hosts[1].addr}:8083/`), 'hello from busybox:1', 'hostm still serves');
});
