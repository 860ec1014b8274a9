// Integration tests for lb (Mesh) robustness on loopback: a backend killed
// mid-run costs no request (TCP and HTTP mode), setServices swaps backends
// and ports without cutting open connections, a busy port is reported and
// retried without crashing, slowloris/half-open clients are reaped and do not
// block others, and sockets are not leaked.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Mesh, type MeshOptions, type MeshService } from '../../lb/index.js';
import { freePort } from '../helpers/net.js';

const LO = '127.0.0.1';


async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Backend { name: string; addr: string; hits: number; server: http.Server; kill: () => Promise<void> }

async function backend(t: import('ava').ExecutionContext, name: string): Promise<Backend> {
  const server = http.createServer((_req, res) => {
    b.hits++;
    res.end(name);
  });
  const b: Backend = {
    name,
    addr: '',
    hits: 0,
    server,
    kill: () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      return closed;
    },
  };
  await new Promise<void>((r) => server.listen(0, LO, r));
  b.addr = `${LO}:${(server.address() as net.AddressInfo).port}`;
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return b;
}

function get(port: number, agent: http.Agent | false = false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: LO, port, path: '/', agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
  });
}

async function mesh(t: import('ava').ExecutionContext, services: MeshService[], opts: MeshOptions = {}): Promise<Mesh> {
  const m = new Mesh({ bindHost: LO, ...opts });
  t.teardown(() => m.close());
  await m.setServices(services);
  return m;
}

const svc = (id: string, port: number, mode: 'tcp' | 'http', addrs: string[]): MeshService => ({
  serviceId: id,
  name: id,
  ports: [{ protocol: 'tcp', publishedPort: port, targetPort: 1, mode }],
  backends: addrs.map((addr) => ({ addr, healthy: true })),
});

// serial tests run first, alone: the fd count is not disturbed by other tests
test.serial('no socket leak after 2,000 connections (TCP and HTTP mode)', async (t) => {
  const b = await backend(t, 'a');
  const [tp, hp] = await Promise.all([freePort(), freePort()]);
  const m = await mesh(t, [svc('leak-t', tp, 'tcp', [b.addr]), svc('leak-h', hp, 'http', [b.addr])]);
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  for (const port of [tp, hp]) {
    for (let i = 0; i < 1000; i += 20) {
      const rs = await Promise.all(Array.from({ length: 20 }, () => get(port)));
      t.true(rs.every((r) => r.status === 200));
    }
  }
  await until('connections to drain', () => m.stats().every((s) => s.connectionsActive === 0));
  t.deepEqual(m.stats().map((s) => s.connectionsTotal), [1000, 1000]);
  // HTTP mode keeps a bounded keep-alive pool to the backend; nothing else may remain
  await until('fds to return to baseline', () => fds() <= before + 40);
  t.pass();
});

for (const mode of ['tcp', 'http'] as const) {
  test(`${mode} mode: a backend killed mid-run fails no request`, async (t) => {
    const bs = await Promise.all(['a', 'b', 'c'].map((n) => backend(t, n)));
    const port = await freePort();
    const m = await mesh(t, [svc(`kill-${mode}`, port, mode, bs.map((b) => b.addr))]);
    const agent = mode === 'http' ? new http.Agent({ keepAlive: true, maxSockets: 4 }) : false;
    if (agent) t.teardown(() => agent.destroy());
    let failures = 0;
    let done = 0;
    let killed: Promise<void> | undefined;
    let hitsAtKill = 0;
    // TCP mode: sequential new connections (a connection already open to a
    // dying backend is lost in any L4 proxy); HTTP mode: 4 concurrent keep-alive loops
    const loops = mode === 'http' ? 4 : 1;
    await Promise.all(
      Array.from({ length: loops }, async () => {
        while (done < 300) {
          if (done >= 100 && killed === undefined) {
            killed = bs[1].kill();
            await killed;
            hitsAtKill = bs[1].hits;
          }
          done++;
          try {
            const r = await get(port, agent);
            if (r.status !== 200) failures++;
          } catch {
            failures++;
          }
        }
      }),
    );
    t.is(failures, 0);
    t.is(bs[1].hits, hitsAtKill);
    t.true(bs[0].hits > 100 && bs[2].hits > 100);
    t.true(m.stats()[0].backendErrors >= 1);
  });
}

/** a listener whose process is stopped and whose accept queue is full: connects to it time out */
async function blackhole(t: import('ava').ExecutionContext): Promise<string> {
  const child = spawn(process.execPath, ['-e', "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('exit', () => reject(new Error('blackhole child exited')));
  });
  child.kill('SIGSTOP');
  for (let i = 0; i < 20; i++) {
    const r = await new Promise<string>((resolve) => {
      const c = net.connect({ host: LO, port });
      t.teardown(() => c.destroy());
      c.on('error', () => resolve('error'));
      c.on('connect', () => resolve('connected'));
      c.setTimeout(300, () => resolve('timeout'));
    });
    if (r === 'timeout') return `${LO}:${port}`;
  }
  throw new Error('could not fill the accept queue');
}

for (const mode of ['tcp', 'http'] as const) {
  test(`${mode} mode: a backend that stops answering (connect timeout) is skipped`, async (t) => {
    const hole = await blackhole(t);
    const good = await backend(t, 'good');
    const port = await freePort();
    const m = await mesh(t, [svc(`hole-${mode}`, port, mode, [hole, good.addr])], { connectTimeoutMs: 300 });
    for (let i = 0; i < 10; i++) t.is((await get(port)).body, 'good');
    t.is(good.hits, 10);
    t.true(m.stats()[0].backendErrors >= 1);
  });
}

test('setServices: backend swap and port changes keep open connections', async (t) => {
  const echo = (tag: string) =>
    net.createServer((s) => {
      s.on('data', (d) => s.write(`${tag}:${d}`));
      s.on('error', () => {});
    });
  const [ea, eb] = [echo('A'), echo('B')];
  for (const s of [ea, eb]) {
    await new Promise<void>((r) => s.listen(0, LO, r));
    t.teardown(() => s.close());
  }
  const addr = (s: net.Server) => `${LO}:${(s.address() as net.AddressInfo).port}`;
  const [p1, p2] = await Promise.all([freePort(), freePort()]);
  const m = await mesh(t, [svc('diff', p1, 'tcp', [addr(ea)])]);

  const open = async (port: number) => {
    const c = net.connect({ host: LO, port });
    c.on('error', () => {});
    t.teardown(() => c.destroy());
    await new Promise<void>((r, j) => c.once('connect', r).once('error', j));
    return c;
  };
  const ask = (c: net.Socket, msg: string) =>
    new Promise<string>((resolve, reject) => {
      c.once('data', (d) => resolve(d.toString()));
      c.once('close', () => reject(new Error('closed')));
      c.write(msg);
    });
  const c1 = await open(p1);
  t.is(await ask(c1, 'one'), 'A:one');

  // swap A → B and add a second port: the open connection still talks to A
  await m.setServices([{ ...svc('diff', p1, 'tcp', [addr(eb)]), ports: [svc('', p1, 'tcp', []).ports[0], { protocol: 'tcp', publishedPort: p2, targetPort: 1, mode: 'tcp' }] }]);
  t.is(await ask(c1, 'two'), 'A:two');
  const c2 = await open(p1);
  t.is(await ask(c2, 'x'), 'B:x');
  const c3 = await open(p2);
  t.is(await ask(c3, 'y'), 'B:y');

  // remove port p1: it stops accepting, the connections it carries live on
  await m.setServices([{ ...svc('diff', p2, 'tcp', [addr(eb)]) }]);
  t.is(await ask(c1, 'three'), 'A:three');
  t.is(await ask(c2, 'z'), 'B:z');
  const refused = await new Promise<string>((resolve) => {
    const c = net.connect({ host: LO, port: p1 });
    c.on('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  t.is(refused, 'ECONNREFUSED');
  t.deepEqual(m.status().map((s) => [s.publishedPort, s.state]), [[p2, 'listening']]);
});

test('a busy port is reported in status(), other ports work, and it binds once freed', async (t) => {
  const b = await backend(t, 'a');
  const [busy, ok] = await Promise.all([freePort(), freePort()]);
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(busy, LO, r));
  t.teardown(() => squatter.close());
  const m = await mesh(t, [svc('busy', busy, 'http', [b.addr]), svc('fine', ok, 'tcp', [b.addr]), svc('dup', ok, 'tcp', [b.addr])], { bindRetryMs: 100 });
  const st = Object.fromEntries(m.status().map((s) => [s.serviceId, s]));
  t.is(st.busy.state, 'failed');
  t.regex(st.busy.error ?? '', /EADDRINUSE/);
  t.truthy(st.busy.retryAt);
  t.is(st.fine.state, 'listening');
  t.is(st.dup.state, 'conflict');
  t.regex(st.dup.error ?? '', /already published by service fine/);
  t.is((await get(ok)).body, 'a');

  await new Promise<void>((r) => squatter.close(() => r()));
  await until('retry bind', () => m.status().find((s) => s.serviceId === 'busy')?.state === 'listening');
  t.is((await get(busy)).body, 'a');
});

test('slowloris and half-open clients are reaped and do not block others', async (t) => {
  const b = await backend(t, 'a');
  // a TCP backend that never answers and never closes: half-open clients sit on it
  const mute = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => mute.listen(0, LO, r));
  t.teardown(() => mute.close());
  const muteAddr = `${LO}:${(mute.address() as net.AddressInfo).port}`;
  const [hp, tp, mp] = await Promise.all([freePort(), freePort(), freePort()]);
  const m = await mesh(t, [svc('slow-h', hp, 'http', [b.addr]), svc('slow-t', tp, 'tcp', [b.addr]), svc('slow-m', mp, 'tcp', [muteAddr])], {
    httpHeadersTimeoutMs: 1000,
    tcpIdleTimeoutMs: 1000,
  });
  const closedCount = { n: 0 };
  const attackers: net.Socket[] = [];
  const attack = (port: number, first: string, halfClose: boolean) => {
    const c = net.connect({ host: LO, port }, () => {
      c.write(first);
      if (halfClose) c.end();
    });
    c.on('error', () => {});
    c.resume(); // read (and drop) whatever the mesh answers, so its FIN is seen
    c.on('close', () => closedCount.n++);
    attackers.push(c);
  };
  t.teardown(() => attackers.forEach((c) => c.destroy()));
  for (let i = 0; i < 30; i++) attack(hp, 'GET / HTTP/1.1\r\nHost: x\r\n', false); // never finishes headers
  for (let i = 0; i < 30; i++) attack(tp, '', false); // connects, says nothing
  for (let i = 0; i < 30; i++) attack(mp, 'hello', true); // half-closes; backend never answers
  await until('attackers connected', () => m.stats().reduce((n, s) => n + s.connectionsActive, 0) >= 90);
  for (let i = 0; i < 10; i++) {
    t.is((await get(hp)).body, 'a');
    t.is((await get(tp)).body, 'a');
  }
  await until('slow clients reaped by the mesh', () => closedCount.n === 90);
  await until('mesh connections drained', () => m.stats().every((s) => s.connectionsActive === 0));
  t.pass();
});
