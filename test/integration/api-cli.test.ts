// Drives the real ApiServer with the stock docker CLI over a temporary unix
// socket: a small in-test SwarmBackend hands out a MemoryStore seeded with a
// cluster and one ready manager node (no orchestrators run, so services are
// created with --detach). Non-swarm calls go through to the real dockerd.
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { unavailable } from '../../agent/common/errors.js';
import { newId } from '../../agent/common/ids.js';
import type { Cluster, Node, NodeRole, Service } from '../../agent/common/types.js';
import { ALREADY_IN_SWARM, type ControlPlane, type LocalSwarmInfo, type SwarmBackend } from '../../agent/api/backend.js';
import { ApiServer } from '../../agent/api/server.js';
import { MemoryStore } from '../../agent/manager/store/memory.js';

const DOCKER = '/usr/local/bin/docker';
const suffix = randomBytes(4).toString('hex');
const HOST = `apitest-${suffix}`;
const CONTAINER = `shoal-apitest-${suffix}`;

class TestBackend implements SwarmBackend {
  readonly hostname = HOST;
  constructor(readonly store: MemoryStore, readonly nodeId: string) {}
  info(): LocalSwarmInfo {
    return { NodeID: this.nodeId, NodeAddr: '127.0.0.1', LocalNodeState: 'active', ControlAvailable: true, Error: '', RemoteManagers: [{ NodeID: this.nodeId, Addr: '127.0.0.1:2377' }] };
  }
  async init(): Promise<string> { throw unavailable(ALREADY_IN_SWARM); }
  async join(): Promise<void> { throw unavailable(ALREADY_IN_SWARM); }
  async leave(): Promise<void> { throw unavailable('You are attempting to leave the swarm on a node that is participating as a manager.'); }
  control(): ControlPlane {
    const store = this.store;
    return {
      store,
      async rotateJoinToken(role: NodeRole) {
        await store.update((tx) => {
          const c = tx.list('cluster')[0]!;
          const secret = randomBytes(12).toString('hex');
          if (role === 'worker') c.JoinTokens.Worker = `SWMTKN-1-test-${secret}`; else c.JoinTokens.Manager = `SWMTKN-1-test-${secret}`;
          tx.update('cluster', c);
        });
      },
    };
  }
}

async function seed(): Promise<{ store: MemoryStore; nodeId: string }> {
  const store = new MemoryStore();
  const nodeId = newId();
  const cluster: Cluster = {
    ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: 'default', Labels: {}, Orchestration: { TaskHistoryRetentionLimit: 5 }, Raft: { SnapshotInterval: 10000, KeepOldSnapshots: 0, LogEntriesForSlowFollowers: 500, ElectionTick: 10, HeartbeatTick: 1 }, Dispatcher: { HeartbeatPeriod: 5e9 }, CAConfig: { NodeCertExpiry: 7776000000000000 }, TaskDefaults: {}, EncryptionConfig: { AutoLockManagers: false } },
    TLSInfo: { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' },
    RootRotationInProgress: false, DefaultAddrPool: null, SubnetSize: 24, DataPathPort: 4789,
    JoinTokens: { Worker: 'SWMTKN-1-test-worker', Manager: 'SWMTKN-1-test-manager' },
  };
  const node: Node = {
    ID: nodeId, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Labels: {}, Role: 'manager', Availability: 'active' },
    Description: { Hostname: HOST, Platform: { Architecture: 'x86_64', OS: 'linux' }, Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 34 }, Engine: { EngineVersion: '20.10.24+dfsg1', Plugins: [] } },
    Status: { State: 'ready', Addr: '127.0.0.1' },
    ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '127.0.0.1:2377' },
  };
  await store.update((tx) => { tx.create('cluster', cluster); tx.create('nodes', node); });
  return { store, nodeId };
}

let dir = '';
let sock = '';
let server: ApiServer;
let store: MemoryStore;
let nodeId = '';

interface Run { code: number; stdout: string; stderr: string }

function docker(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(DOCKER, ['-H', `unix://${sock}`, ...args], { timeout: 60_000, env: { ...process.env, DOCKER_CONFIG: path.join(dir, 'cli'), DOCKER_HOST: '' } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function raw(method: string, p: string, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method, path: p, headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, timeout: 30_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const cols = (line: string) => line.trim().split(/\s{2,}/);
const svc = (name: string): Service | undefined => store.list('services').find((s) => s.Spec.Name === name);

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-api-'));
  sock = path.join(dir, 'run', 'docker.sock');
  ({ store, nodeId } = await seed());
  server = new ApiServer({ backend: new TestBackend(store, nodeId), dockerHost: 'unix:///var/run/docker.sock' });
  await server.listenUnix(sock);
});

test.after.always(async () => {
  await new Promise((r) => execFile(DOCKER, ['-H', 'unix:///var/run/docker.sock', 'rm', '-f', CONTAINER], () => r(undefined)));
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('ping answers HEAD and GET with Docker headers', async (t) => {
  const head = await raw('HEAD', '/_ping');
  t.is(head.status, 200);
  t.is(head.headers['api-version'], '1.41');
  t.is(head.headers['ostype'], 'linux');
  t.is(head.headers['docker-experimental'], 'false');
  t.is(head.headers['cache-control'], 'no-cache, no-store, must-revalidate');
  t.is(head.headers['pragma'], 'no-cache');
  t.is(head.headers['swarm'], 'active/manager');
  t.regex(String(head.headers['server']), /^shoal\//);
  t.is(head.headers['content-length'], '0');
  const get = await raw('GET', '/v1.41/_ping');
  t.is(get.body, 'OK');
  const tooNew = await raw('GET', '/v1.99/nodes');
  t.is(tooNew.status, 400);
});

test.serial('docker version and info see API 1.41 and an active swarm', async (t) => {
  const v = await docker('version');
  t.is(v.code, 0, v.stderr);
  t.regex(v.stdout, /API version:\s+1\.41 \(downgraded from 1\.\d+\)/);
  const info = await docker('info');
  t.is(info.code, 0, info.stderr);
  t.regex(info.stdout, /Swarm: active/);
  t.regex(info.stdout, new RegExp(`NodeID: ${nodeId}`));
  t.regex(info.stdout, /Is Manager: true/);
  t.regex(info.stdout, /Managers: 1/);
  t.regex(info.stdout, /Nodes: 1/);
  t.regex(info.stdout, new RegExp(`Name: ${HOST}`));
});

test.serial('swarm join-token, token rotation, second init, node inspect self', async (t) => {
  const tok = await docker('swarm', 'join-token', '-q', 'worker');
  t.is(tok.code, 0, tok.stderr);
  t.is(tok.stdout, 'SWMTKN-1-test-worker\n');
  const full = await docker('swarm', 'join-token', 'manager');
  t.is(full.code, 0, full.stderr);
  t.true(full.stdout.includes('docker swarm join --token SWMTKN-1-test-manager 127.0.0.1:2377'), full.stdout);
  const rot = await docker('swarm', 'join-token', '--rotate', '-q', 'worker');
  t.is(rot.code, 0, rot.stderr);
  const now = store.list('cluster')[0]!.JoinTokens.Worker;
  t.not(now, 'SWMTKN-1-test-worker');
  t.is(rot.stdout, `${now}\n`);
  const init = await docker('swarm', 'init', '--advertise-addr', '127.0.0.1');
  t.not(init.code, 0);
  t.regex(init.stderr, /This node is already part of a swarm\. Use "docker swarm leave" to leave this swarm and join another one\./);
  const self = await docker('node', 'inspect', 'self', '--pretty');
  t.is(self.code, 0, self.stderr);
  t.true(self.stdout.split('\n').includes(`ID:\t\t\t${nodeId}`), self.stdout);
  t.true(self.stdout.split('\n').includes(` Leader:\t\tYes`), self.stdout);
});

test.serial('node ls and node update --availability drain', async (t) => {
  const ls = await docker('node', 'ls');
  t.is(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trim().split('\n');
  t.deepEqual(cols(lines[0]!), ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE VERSION']);
  t.deepEqual(cols(lines[1]!), [`${nodeId} *`, HOST, 'Ready', 'Active', 'Leader', '20.10.24+dfsg1']);
  const up = await docker('node', 'update', '--availability', 'drain', HOST);
  t.is(up.code, 0, up.stderr);
  t.is(up.stdout, `${HOST}\n`);
  t.is(store.get('nodes', nodeId)!.Spec.Availability, 'drain');
  const back = await docker('node', 'update', '--availability', 'active', '--label-add', 'zone=a', nodeId.slice(0, 6));
  t.is(back.code, 0, back.stderr);
  t.deepEqual(store.get('nodes', nodeId)!.Spec, { Labels: { zone: 'a' }, Role: 'manager', Availability: 'active' });
});

test.serial('overlay network create and ls merge swarm and local networks', async (t) => {
  const cr = await docker('network', 'create', '-d', 'overlay', `net-${suffix}`);
  t.is(cr.code, 0, cr.stderr);
  const id = cr.stdout.trim();
  t.regex(id, /^[a-z0-9]{25}$/);
  t.truthy(store.get('networks', id));
  const ls = await docker('network', 'ls');
  t.is(ls.code, 0, ls.stderr);
  const rows = ls.stdout.trim().split('\n').map(cols);
  t.deepEqual(rows[0], ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE']);
  t.true(rows.some((r) => r.join('|') === `${id.slice(0, 12)}|net-${suffix}|overlay|swarm`));
  t.true(rows.some((r) => r[1] === 'bridge' && r[2] === 'bridge' && r[3] === 'local'));
  const dup = await docker('network', 'create', '-d', 'overlay', `net-${suffix}`);
  t.not(dup.code, 0);
  t.regex(dup.stderr, /network with name net-\w+ already exists/);
});

test.serial('service create, ls, inspect --pretty, scale, update, rollback, rm', async (t) => {
  const name = `web-${suffix}`;
  const cr = await docker('service', 'create', '--detach', '--name', name, '--replicas', '2', '--network', `net-${suffix}`, '-p', '8080:80',
    'local/busybox:1', 'httpd', '-f', '-p', '80', '-h', '/www');
  t.is(cr.code, 0, cr.stderr);
  const s = svc(name)!;
  t.truthy(s);
  t.is(cr.stdout, `${s.ID}\n`);
  t.is(s.Spec.TaskTemplate.Networks![0]!.Target, store.list('networks')[0]!.ID);
  t.deepEqual(s.Endpoint.Ports, [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }]);
  t.is(s.SpecVersion, 1);

  const ls = await docker('service', 'ls');
  t.is(ls.code, 0, ls.stderr);
  const rows = ls.stdout.trim().split('\n').map(cols);
  t.deepEqual(rows[0], ['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS']);
  t.deepEqual(rows.find((r) => r[1] === name), [s.ID.slice(0, 12), name, 'replicated', '0/2', 'local/busybox:1', '*:8080->80/tcp']);

  const pretty = await docker('service', 'inspect', '--pretty', name);
  t.is(pretty.code, 0, pretty.stderr);
  for (const line of ['UpdateConfig:', ' Parallelism:\t1', ' On failure:\tpause', ' Monitoring Period: 5s', ' Max failure ratio: 0',
    ' Update order:      stop-first', ' Rollback order:    stop-first', ' Image:\t\tlocal/busybox:1', ' Args:\t\thttpd -f -p 80 -h /www ',
    `Networks: net-${suffix} `, 'Endpoint Mode:\tvip', ' PublishedPort = 8080', '  Protocol = tcp', '  TargetPort = 80', '  PublishMode = ingress ']) {
    t.true(pretty.stdout.split('\n').includes(line), `missing ${JSON.stringify(line)} in\n${pretty.stdout}`);
  }

  const ps = await docker('service', 'ps', name);
  t.is(ps.code, 0, ps.stderr);
  t.deepEqual(cols(ps.stdout.trim()), ['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS']);

  const sc = await docker('service', 'scale', '--detach', `${name}=3`);
  t.is(sc.code, 0, sc.stderr);
  t.is(sc.stdout, `${name} scaled to 3\n`);
  t.is(svc(name)!.Spec.Mode.Replicated!.Replicas, 3);
  t.is(svc(name)!.SpecVersion, 1, 'a scale does not make tasks out of date');

  const up = await docker('service', 'update', '--detach', '--image', 'local/busybox:2', name);
  t.is(up.code, 0, up.stderr);
  t.is(up.stdout, `${name}\n`);
  const after = svc(name)!;
  t.is(after.Spec.TaskTemplate.ContainerSpec.Image, 'local/busybox:2');
  t.is(after.PreviousSpec!.TaskTemplate.ContainerSpec.Image, 'local/busybox:1');
  t.is(after.SpecVersion, 2);
  t.is(after.UpdateStatus!.State, 'updating');

  const rb = await docker('service', 'rollback', '--detach', name);
  t.is(rb.code, 0, rb.stderr);
  t.is(rb.stdout, `${name}\n`);
  const rolled = svc(name)!;
  t.is(rolled.Spec.TaskTemplate.ContainerSpec.Image, 'local/busybox:1');
  t.is(rolled.PreviousSpec!.TaskTemplate.ContainerSpec.Image, 'local/busybox:2');
  t.is(rolled.UpdateStatus!.State, 'rollback_started');
  t.is(rolled.UpdateStatus!.Message, 'manually requested rollback');

  const inUse = await docker('network', 'rm', `net-${suffix}`);
  t.not(inUse.code, 0);
  t.regex(inUse.stderr, /is in use by service/);

  const rmv = await docker('service', 'rm', name);
  t.is(rmv.code, 0, rmv.stderr);
  t.is(rmv.stdout, `${name}\n`);
  t.is(svc(name), undefined);
  const nrm = await docker('network', 'rm', `net-${suffix}`);
  t.is(nrm.code, 0, nrm.stderr);
  t.is(store.list('networks').length, 0);
});

test.serial('docker ps and docker run --rm go through to dockerd (attach is hijacked)', async (t) => {
  const ps = await docker('ps');
  t.is(ps.code, 0, ps.stderr);
  t.deepEqual(cols(ps.stdout.split('\n')[0]!), ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']);
  const run = await docker('run', '--rm', '--name', CONTAINER, '--network', 'none', 'local/busybox:1', 'echo', 'hi');
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout, 'hi\n');
});

test.serial('bad inputs give Docker errors and change nothing', async (t) => {
  const create = await docker('service', 'create', '--detach', '--no-resolve-image', '--name', `ok-${suffix}`, 'local/busybox:1', 'sleep', '60');
  t.is(create.code, 0, create.stderr);
  const s = svc(`ok-${suffix}`)!;
  const before = store.revision;
  const spec = JSON.stringify(s.Spec);

  const malformed = await raw('POST', '/v1.41/services/create', '{"Name": "x",');
  t.is(malformed.status, 400);
  t.regex(JSON.parse(malformed.body).message, /^invalid JSON: /);

  const negative = await raw('POST', '/v1.41/services/create', JSON.stringify({ Name: `neg-${suffix}`, TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } }, Mode: { Replicated: { Replicas: -1 } } }));
  t.is(negative.status, 400);
  t.is(JSON.parse(negative.body).message, 'rpc error: code = InvalidArgument desc = Number of replicas must be non-negative');

  const noImage = await raw('POST', '/v1.41/services/create', JSON.stringify({ Name: `noimg-${suffix}`, TaskTemplate: { ContainerSpec: {} } }));
  t.is(noImage.status, 400);
  t.is(JSON.parse(noImage.body).message, 'rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided');

  const unknown = await raw('GET', '/v1.41/services/nope-does-not-exist');
  t.is(unknown.status, 404);
  t.is(JSON.parse(unknown.body).message, 'service nope-does-not-exist not found');
  const unknownNode = await raw('POST', '/v1.41/nodes/nope/update?version=1', '{"Role":"manager","Availability":"active"}');
  t.is(unknownNode.status, 404);
  t.is(JSON.parse(unknownNode.body).message, 'node nope not found');

  const dup = await raw('POST', '/v1.41/services/create', spec);
  t.is(dup.status, 409);
  t.is(JSON.parse(dup.body).message, `rpc error: code = AlreadyExists desc = name conflicts with an existing object: service ok-${suffix} already exists`);

  const changed = { ...s.Spec, Labels: { a: 'b' } };
  const stale = await raw('POST', `/v1.41/services/${s.ID}/update?version=${s.Version.Index - 1}`, JSON.stringify(changed));
  t.is(stale.status, 400);
  t.is(JSON.parse(stale.body).message, 'rpc error: code = Unknown desc = update out of sequence');

  const badFilter = await raw('GET', `/v1.41/services?filters=${encodeURIComponent('{"bogus":{"x":true}}')}`);
  t.is(badFilter.status, 400);
  t.is(JSON.parse(badFilter.body).message, "invalid filter 'bogus'");

  const cli = await docker('service', 'create', '--detach', '--no-resolve-image', '--name', `ok-${suffix}`, 'local/busybox:1');
  t.not(cli.code, 0);
  t.regex(cli.stderr, /name conflicts with an existing object/);

  t.is(store.revision, before, 'nothing was written');
  t.is(JSON.stringify(svc(`ok-${suffix}`)!.Spec), spec);
  t.is(store.list('services').length, 1);
  const rmv = await docker('service', 'rm', `ok-${suffix}`);
  t.is(rmv.code, 0, rmv.stderr);
});
