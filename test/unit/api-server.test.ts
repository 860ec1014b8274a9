// Unit tests of the API server's HTTP layer against a fake dockerd on a temp
// unix socket: version prefixes, ping headers, /info merge, errors as
// {"message"}, 503 when not a manager, body limit, garbage input, and the
// proxy (streamed long-poll headers, chunked bodies, Upgrade: tcp hijack).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { unavailable } from '../../agent/common/errors.js';
import { NOT_IN_SWARM, type ControlPlane, type LocalSwarmInfo, type SwarmBackend } from '../../agent/api/backend.js';
import { ApiServer } from '../../agent/api/server.js';
import { MemoryStore } from '../../agent/manager/store/memory.js';

let dir = '';
let sock = '';
let fakeSock = '';
let fake: http.Server;
let server: ApiServer;
const state = { manager: true };
const store = new MemoryStore();
const seen: string[] = [];

const backend: SwarmBackend = {
  hostname: 'unit-host',
  info(): LocalSwarmInfo {
    return state.manager
      ? { NodeID: 'n1', NodeAddr: '127.0.0.1', LocalNodeState: 'active', ControlAvailable: true, Error: '', RemoteManagers: [{ NodeID: 'n1', Addr: '127.0.0.1:2377' }] }
      : { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null };
  },
  async init() { return 'newnodeid'; },
  async join() {},
  async leave() {},
  control(): ControlPlane {
    if (!state.manager) throw unavailable(NOT_IN_SWARM);
    return { store, rotateJoinToken: async () => undefined };
  },
};

function fakeDockerd(): http.Server {
  const s = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const url = req.url ?? '';
    if (url.endsWith('/info')) { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify({ Name: 'dockerd-host', ServerVersion: '20.10', Swarm: { LocalNodeState: 'inactive' } })); return; }
    if (url.endsWith('/version')) { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify({ Version: '20.10', ApiVersion: '1.41', Components: [{ Name: 'Engine', Details: { ApiVersion: '1.41' } }] })); return; }
    if (url.startsWith('/v1.41/networks') || url.startsWith('/networks')) { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify([{ Name: 'bridge', Id: 'b'.repeat(64), Scope: 'local', Driver: 'bridge' }])); return; }
    if (url.includes('/wait')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      setTimeout(() => res.end('{"StatusCode":0}\n'), 300);
      return;
    }
    if (url.includes('/echo')) { let body = ''; req.on('data', (c) => { body += c; }); req.on('end', () => res.end(`got:${body}`)); return; }
    if (url.includes('/stream')) { res.write('a'); setTimeout(() => { res.write('b'); res.end('c'); }, 50); return; }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ message: `page not found` }));
  });
  s.on('upgrade', (req, socket: net.Socket) => {
    seen.push(`UPGRADE ${req.url}`);
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    socket.on('data', (d) => socket.write(d));
    socket.on('end', () => socket.end('bye'));
  });
  return s;
}

interface Resp { status: number; headers: http.IncomingHttpHeaders; body: string }
function call(method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string | number> = { ...headers };
    if (body !== undefined) { h['Content-Type'] ??= 'application/json'; h['Content-Length'] = Buffer.byteLength(body); }
    const req = http.request({ socketPath: sock, method, path: p, headers: h, timeout: 10_000 }, (res) => {
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
const msg = (r: Resp) => (JSON.parse(r.body) as { message: string }).message;

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), `shoal-apiu-${randomBytes(3).toString('hex')}-`));
  sock = path.join(dir, 'nested', 'api.sock');
  fakeSock = path.join(dir, 'dockerd.sock');
  fake = fakeDockerd();
  await new Promise<void>((r) => fake.listen(fakeSock, r));
  server = new ApiServer({ backend, dockerHost: `unix://${fakeSock}` });
  await server.listenUnix(sock);
  await store.update((tx) => tx.create('cluster', {
    ID: 'c1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'default' },
    TLSInfo: { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' }, RootRotationInProgress: false,
    DefaultAddrPool: null, SubnetSize: 24, DataPathPort: 4789, JoinTokens: { Worker: 'w', Manager: 'm' },
  }));
});

test.after.always(async () => {
  await server?.close();
  await new Promise((r) => fake?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('ping, versioned and unversioned paths, too-new versions', async (t) => {
  const h = await call('HEAD', '/_ping');
  t.is(h.status, 200);
  t.is(h.headers['api-version'], '1.41');
  t.is(h.headers['swarm'], 'active/manager');
  const g = await call('GET', '/v1.24/_ping');
  t.is(g.body, 'OK');
  t.is((await call('GET', '/swarm')).status, 200);
  t.is((await call('GET', '/v1.41/swarm')).status, 200);
  const tooNew = await call('GET', '/v1.50/swarm');
  t.is(tooNew.status, 400);
  t.is(msg(tooNew), 'client version 1.50 is too new. Maximum supported API version is 1.41');
});

test.serial('info carries the swarm section and name; version says 1.41', async (t) => {
  const info = JSON.parse((await call('GET', '/v1.41/info')).body);
  t.is(info.Name, 'unit-host');
  t.is(info.ServerVersion, '20.10');
  t.like(info.Swarm, { NodeID: 'n1', LocalNodeState: 'active', ControlAvailable: true, Nodes: 0, Managers: 0 });
  t.is(info.Swarm.Cluster.ID, 'c1');
  t.is(info.Swarm.Cluster.DataPathPort, 4789);
  const v = JSON.parse((await call('GET', '/version')).body);
  t.is(v.ApiVersion, '1.41');
});

test.serial('responses are framed as dockerd frames them', async (t) => {
  const sw = await call('GET', '/v1.41/swarm');
  t.is(sw.headers['content-type'], 'application/json');
  t.true(sw.body.endsWith('}\n'));
  const init = await call('POST', '/v1.41/swarm/init', '{"ListenAddr":"0.0.0.0:2377"}');
  t.is(init.body, '"newnodeid"\n');
  const leave = await call('POST', '/v1.41/swarm/leave?force=1');
  t.is(leave.status, 200);
  t.is(leave.headers['content-length'], '0');
  t.is(leave.headers['content-type'], undefined);
  t.deepEqual(JSON.parse((await call('GET', '/v1.41/swarm/unlockkey')).body), { UnlockKey: '' });
});

test.serial('not a manager: swarm routes answer 503 in Docker words; networks fall back to dockerd', async (t) => {
  state.manager = false;
  try {
    for (const p of ['/v1.41/nodes', '/v1.41/services', '/v1.41/tasks', '/v1.41/swarm']) {
      const r = await call('GET', p);
      t.is(r.status, 503);
      t.is(msg(r), NOT_IN_SWARM);
    }
    const nets = JSON.parse((await call('GET', '/v1.41/networks')).body);
    t.deepEqual(nets.map((n: { Name: string }) => n.Name), ['bridge']);
    const ping = await call('HEAD', '/_ping');
    t.is(ping.headers['swarm'], 'inactive');
  } finally {
    state.manager = true;
  }
});

test.serial('bad input never crashes the server and changes nothing', async (t) => {
  const before = store.revision;
  const cases: [string, string, string | undefined, number][] = [
    ['POST', '/v1.41/services/create', '{', 400],
    ['POST', '/v1.41/services/create', '[]', 400],
    ['POST', '/v1.41/services/create', 'null', 400],
    ['POST', '/v1.41/services/create', '{"Name":"x","TaskTemplate":"nope"}', 400],
    ['POST', '/v1.41/services/create', '{"Name":"x","TaskTemplate":{"ContainerSpec":{"Image":"a","Mounts":[1]}}}', 400],
    ['POST', '/v1.41/services/create', '{"Name":"x","TaskTemplate":{"ContainerSpec":{"Image":"a"}},"EndpointSpec":{"Ports":[null]}}', 400],
    ['POST', '/v1.41/services/x/update', '{}', 400],
    ['POST', '/v1.41/services/x/update?version=abc', '{}', 400],
    ['POST', '/v1.41/nodes/x/update?version=1', '"str"', 400],
    ['GET', '/v1.41/services?filters=%7B', undefined, 400],
    ['GET', '/v1.41/services?filters=%5B1%5D', undefined, 400],
    ['GET', '/v1.41/tasks?filters=%7B%22service%22%3A%7B%22nope%22%3Atrue%7D%7D', undefined, 404],
    ['GET', '/v1.41/services/%E0%A4%A', undefined, 400],
    ['POST', '/v1.41/swarm/update?version=1', '{"Dispatcher":5}', 400],
    ['POST', '/v1.41/swarm/join', '{"RemoteAddrs":"x"}', 400],
    ['POST', '/v1.41/networks/create', '{"Name":"n","Driver":"overlay","IPAM":{"Config":"x"}}', 400],
    ['POST', '/v1.41/networks/create', '{"Name":', 400],
    ['DELETE', '/v1.41/nodes/nope', undefined, 404],
  ];
  for (const [method, p, body, status] of cases) {
    const r = await call(method, p, body);
    t.is(r.status, status, `${method} ${p} ${body}: ${r.body}`);
    t.is(typeof msg(r), 'string');
  }
  const wrongType = await call('POST', '/v1.41/services/create', '{}', { 'Content-Type': 'text/plain' });
  t.is(wrongType.status, 400);
  t.is(msg(wrongType), "unsupported Content-Type header (text/plain): must be 'application/json'");
  const huge = await call('POST', '/v1.41/services/create', Buffer.alloc(17 * 1024 * 1024, 0x20));
  t.is(huge.status, 413);
  t.is(store.revision, before);
  t.is((await call('GET', '/_ping')).body, 'OK');
});

test.serial('proxy: bodies, chunked streams, early headers of long polls, dockerd errors', async (t) => {
  const echo = await call('POST', '/v1.41/echo', 'hello');
  t.is(echo.body, 'got:hello');
  const stream = await call('GET', '/v1.41/stream');
  t.is(stream.body, 'abc');
  const nf = await call('GET', '/v1.41/containers/x/json');
  t.is(nf.status, 404);
  t.is(msg(nf), 'page not found');
  // the long poll's headers arrive before its body
  const headersFirst = await new Promise<number>((resolve, reject) => {
    const req = http.request({ socketPath: sock, method: 'POST', path: '/v1.41/containers/c/wait?condition=next-exit', timeout: 10_000 }, (res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    req.on('error', reject);
    req.end();
  });
  t.is(headersFirst, 200);
  // a swarm network name goes to the store, a local one to dockerd
  const local = await call('GET', '/v1.41/networks/bridge');
  t.is(local.status, 200);
  const swarmOnly = await call('GET', '/v1.41/networks/bridge?scope=swarm');
  t.is(swarmOnly.status, 404);
  t.is(msg(swarmOnly), 'network bridge not found');
});

test.serial('hijack: Upgrade: tcp gets the 101 and a raw two-way stream with half-close', async (t) => {
  const out = await new Promise<string>((resolve, reject) => {
    const c = net.connect(sock);
    let data = '';
    let sent = false;
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      data += d;
      if (!sent && data.includes('\r\n\r\n')) { sent = true; c.write('ping'); setTimeout(() => c.end(), 50); }
    });
    c.on('end', () => resolve(data));
    c.on('error', reject);
    c.write('POST /v1.41/containers/abc/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    setTimeout(() => reject(new Error('hijack timed out')), 10_000).unref();
  });
  t.true(out.startsWith('HTTP/1.1 101 UPGRADED\r\n'));
  t.true(out.endsWith('\r\n\r\npingbye'));
  t.true(seen.includes('UPGRADE /v1.41/containers/abc/attach?stream=1&stdout=1'));
});
