// Integration tests for lb (Mesh) forwarding on loopback with real Node
// servers as backends: round robin in TCP and HTTP mode, client address
// (X-Forwarded-For/Forwarded, PROXY v1/v2), WebSocket upgrade, UDP echo,
// no-backend answers, stats. Robustness lives in mesh-proxy-resilience.test.ts.
import test from 'ava';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { Mesh, parseProxyHeader, type MeshService, type MeshPort } from '../../lb/index.js';
import { freePort } from '../helpers/net.js';

const LO = '127.0.0.1';


interface HttpBackend { name: string; addr: string; hits: number; server: http.Server }

async function httpBackend(t: import('ava').ExecutionContext, name: string): Promise<HttpBackend> {
  const b: HttpBackend = { name, addr: '', hits: 0, server: http.createServer() };
  b.server.on('request', (req, res) => {
    b.hits++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name, remote: req.socket.remoteAddress, headers: req.headers }));
  });
  b.server.on('upgrade', (req, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: ${name}\r\nX-Seen-XFF: ${req.headers['x-forwarded-for']}\r\n\r\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((r) => b.server.listen(0, LO, r));
  b.addr = `${LO}:${(b.server.address() as net.AddressInfo).port}`;
  t.teardown(() => {
    b.server.closeAllConnections();
    b.server.close();
  });
  return b;
}

function get(port: number, opts: http.RequestOptions = {}): Promise<{ status: number; body: string; json: () => any }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: LO, port, path: '/', agent: false, timeout: 10_000, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, json: () => JSON.parse(body) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
  });
}

async function mesh(t: import('ava').ExecutionContext, services: MeshService[]): Promise<Mesh> {
  const m = new Mesh({ bindHost: LO });
  t.teardown(() => m.close());
  await m.setServices(services);
  return m;
}

function svc(id: string, ports: MeshPort[], addrs: string[]): MeshService {
  return { serviceId: id, name: `svc-${id}`, ports, backends: addrs.map((addr) => ({ addr, healthy: true })) };
}

test('TCP mode: round robin over 3 backends, one connection each', async (t) => {
  const bs = await Promise.all(['a', 'b', 'c'].map((n) => httpBackend(t, n)));
  const port = await freePort();
  const m = await mesh(t, [svc('rr-tcp', [{ protocol: 'tcp', publishedPort: port, targetPort: 1, mode: 'tcp' }], bs.map((b) => b.addr))]);
  const names: string[] = [];
  for (let i = 0; i < 9; i++) names.push((await get(port)).json().name);
  t.deepEqual(bs.map((b) => b.hits), [3, 3, 3]);
  t.deepEqual(names.slice(0, 3).sort(), ['a', 'b', 'c']);
  const st = m.stats()[0];
  t.like(st, { connectionsTotal: 9, requests: 9, noBackend: 0, backendErrors: 0 });
  t.true(st.bytesIn > 0 && st.bytesOut > 0);
  t.is(st.latency.count, 9);
});

test('HTTP mode: per-request round robin over one keep-alive client connection', async (t) => {
  const bs = await Promise.all(['a', 'b', 'c'].map((n) => httpBackend(t, n)));
  const port = await freePort();
  const m = await mesh(t, [svc('rr-http', [{ protocol: 'tcp', publishedPort: port, targetPort: 1, mode: 'http' }], bs.map((b) => b.addr))]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (let i = 0; i < 9; i++) t.is((await get(port, { agent })).status, 200);
  t.deepEqual(bs.map((b) => b.hits), [3, 3, 3]);
  t.like(m.stats()[0], { connectionsTotal: 1, requests: 9 });
});

test('HTTP mode: client address in X-Forwarded-For, X-Forwarded-Proto and Forwarded', async (t) => {
  const b = await httpBackend(t, 'a');
  const port = await freePort();
  await mesh(t, [svc('xff', [{ protocol: 'tcp', publishedPort: port, targetPort: 1, mode: 'http' }], [b.addr])]);
  const r = (await get(port, { localAddress: '127.0.0.2' })).json();
  t.is(r.headers['x-forwarded-for'], '127.0.0.2');
  t.is(r.headers['x-forwarded-proto'], 'http');
  t.is(r.headers.forwarded, `for=127.0.0.2;proto=http;host="${LO}:${port}"`);
  const r2 = (await get(port, { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=203.0.113.9' } })).json();
  t.is(r2.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.3');
  t.true(r2.headers.forwarded.startsWith('for=203.0.113.9, for=127.0.0.3;'));
});

for (const version of ['v1', 'v2'] as const) {
  test(`TCP mode: PROXY protocol ${version} header carries the client address`, async (t) => {
    const got: any[] = [];
    const backend = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const h = parseProxyHeader(buf);
        if (h === undefined || !buf.subarray(h.length).includes('\n')) return;
        got.push(h);
        s.end(JSON.stringify({ ...h, payload: buf.subarray(h.length).toString() }));
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => backend.listen(0, LO, r));
    t.teardown(() => backend.close());
    const bport = (backend.address() as net.AddressInfo).port;
    const port = await freePort();
    await mesh(t, [svc(`pp-${version}`, [{ protocol: 'tcp', publishedPort: port, targetPort: bport, mode: 'tcp', proxyProtocol: version }], [LO])]);
    const reply = await new Promise<{ body: any; localPort: number }>((resolve, reject) => {
      const c = net.connect({ host: LO, port, localAddress: '127.0.0.4' }, () => c.write('hello\n'));
      let body = '';
      c.setTimeout(10_000, () => c.destroy(new Error('timeout')));
      c.on('data', (d) => (body += d));
      c.on('end', () => resolve({ body: JSON.parse(body), localPort: c.localPort! }));
      c.on('error', reject);
    });
    t.like(reply.body, { version, command: 'proxy', family: 'tcp4', srcAddr: '127.0.0.4', dstAddr: LO, dstPort: port, payload: 'hello\n' });
    t.is(reply.body.srcPort, reply.localPort);
    t.is(got.length, 1);
  });
}

test('HTTP mode: WebSocket upgrade passes through both ways', async (t) => {
  const b = await httpBackend(t, 'ws');
  const port = await freePort();
  await mesh(t, [svc('ws', [{ protocol: 'tcp', publishedPort: port, targetPort: 1, mode: 'http' }], [b.addr])]);
  const { res, socket } = await new Promise<{ res: http.IncomingMessage; socket: net.Socket }>((resolve, reject) => {
    const req = http.request({ host: LO, port, path: '/ws', agent: false, headers: { Connection: 'Upgrade', Upgrade: 'websocket' } });
    req.on('upgrade', (res, socket) => resolve({ res, socket }));
    req.on('response', (r) => reject(new Error(`no upgrade: ${r.statusCode}`)));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
  t.teardown(() => socket.destroy());
  t.is(res.statusCode, 101);
  t.is(res.headers['x-backend'], 'ws');
  t.is(res.headers['x-seen-xff'], LO);
  const echoed = await new Promise<string>((resolve, reject) => {
    let acc = '';
    socket.on('data', (d) => {
      acc += d;
      if (acc.length >= 9) resolve(acc);
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => reject(new Error('timeout')));
    socket.write('ping-pong');
  });
  t.is(echoed, 'ping-pong');
});

test('UDP: echo through the mesh, one backend per client flow, round robin across flows', async (t) => {
  const backends = await Promise.all(
    ['u1', 'u2'].map(async (name) => {
      const s = dgram.createSocket('udp4');
      s.on('message', (msg, r) => s.send(Buffer.concat([Buffer.from(`${name}:`), msg]), r.port, r.address));
      await new Promise<void>((r) => s.bind(0, LO, r));
      t.teardown(() => s.close());
      return `${LO}:${s.address().port}`;
    }),
  );
  const port = await freePort();
  const m = await mesh(t, [svc('udp', [{ protocol: 'udp', publishedPort: port, targetPort: 1, mode: 'tcp' }], backends)]);
  const client = async (n: number): Promise<string[]> => {
    const c = dgram.createSocket('udp4');
    t.teardown(() => c.close());
    await new Promise<void>((r) => c.bind(0, LO, r));
    const replies: string[] = [];
    // resend until answered (UDP), bounded
    for (let i = 0; i < n; i++) {
      const want = `m${i}`;
      const got = await new Promise<string | undefined>((resolve) => {
        const onMsg = (msg: Buffer) => {
          if (msg.toString().endsWith(want)) finish(msg.toString());
        };
        const finish = (v: string | undefined) => {
          clearInterval(iv);
          clearTimeout(to);
          c.off('message', onMsg);
          resolve(v);
        };
        c.on('message', onMsg);
        const send = () => c.send(want, port, LO);
        const iv = setInterval(send, 200);
        const to = setTimeout(() => finish(undefined), 5000);
        send();
      });
      if (got) replies.push(got);
    }
    return replies;
  };
  const r1 = await client(3);
  const r2 = await client(3);
  t.is(r1.length, 3);
  t.is(r2.length, 3);
  const who = (rs: string[]) => new Set(rs.map((r) => r.split(':')[0]));
  t.is(who(r1).size, 1);
  t.is(who(r2).size, 1);
  t.notDeepEqual([...who(r1)], [...who(r2)]);
  t.like(m.stats()[0], { protocol: 'udp', connectionsTotal: 2 });
});

test('no healthy backend: HTTP answers 503, TCP closes cleanly; all refusing: 502', async (t) => {
  const [hp, tp, dp] = await Promise.all([freePort(), freePort(), freePort()]);
  const dead = await freePort(); // nothing listens here
  const m = await mesh(t, [
    { serviceId: 'nb-http', name: 'nb-http', ports: [{ protocol: 'tcp', publishedPort: hp, targetPort: 80, mode: 'http' }], backends: [{ addr: LO, healthy: false }] },
    { serviceId: 'nb-tcp', name: 'nb-tcp', ports: [{ protocol: 'tcp', publishedPort: tp, targetPort: 80, mode: 'tcp' }], backends: [] },
    svc('nb-dead', [{ protocol: 'tcp', publishedPort: dp, targetPort: dead, mode: 'http' }], [LO]),
  ]);
  const r = await get(hp);
  t.is(r.status, 503);
  t.regex(r.body, /no healthy backend/);
  const r2 = await get(dp);
  t.is(r2.status, 502);
  const outcome = await new Promise<string>((resolve) => {
    const c = net.connect({ host: LO, port: tp }, () => c.write('x'));
    let data = '';
    c.on('data', (d) => (data += d));
    c.on('end', () => resolve(`end:${data}`));
    c.on('error', (e) => resolve(`error:${(e as NodeJS.ErrnoException).code}`));
    c.setTimeout(10_000, () => resolve('timeout'));
  });
  t.is(outcome, 'end:');
  const byName = Object.fromEntries(m.stats().map((s) => [s.name, s]));
  t.is(byName['nb-http'].noBackend, 1);
  t.is(byName['nb-tcp'].noBackend, 1);
  t.true(byName['svc-nb-dead'].backendErrors >= 1);
});
