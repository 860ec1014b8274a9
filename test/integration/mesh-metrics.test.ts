// shoal_mesh_* metrics (agent/metrics/mesh.ts) from a real Mesh on loopback:
// counters and the latency histogram follow TCP, HTTP and UDP traffic, and
// `promtool check metrics` accepts the exposition.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import client from 'prom-client';
import { Mesh } from '../../lb/index.js';
import { registerMeshMetrics } from '../../agent/metrics/mesh.js';
import { freePort } from '../helpers/net.js';

const LO = '127.0.0.1';


const get = (port: number) =>
  new Promise<string>((resolve, reject) => {
    http.get({ host: LO, port, agent: false, timeout: 5000 }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d)).on('end', () => resolve(b));
    }).on('error', reject);
  });

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('counters and histogram follow traffic; promtool accepts the exposition', async (t) => {
  const backend = http.createServer((_req, res) => res.end('ok\n'));
  await new Promise<void>((r) => backend.listen(0, LO, r));
  const udpBackend = dgram.createSocket('udp4');
  udpBackend.on('message', (m, r) => udpBackend.send(m, r.port, r.address));
  await new Promise<void>((r) => udpBackend.bind(0, LO, r));
  const mesh = new Mesh({ bindHost: LO });
  const dir = mkdtempSync(join(tmpdir(), 'shoal-mesh-metrics-'));
  t.teardown(async () => {
    await mesh.close();
    backend.closeAllConnections();
    backend.close();
    udpBackend.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const be = [{ addr: `${LO}:${(backend.address() as net.AddressInfo).port}`, healthy: true }];
  const [tcpPort, httpPort, udpPort] = await Promise.all([freePort(), freePort(), freePort()]);
  await mesh.setServices([
    { serviceId: 's1', name: 'web', ports: [{ protocol: 'tcp', publishedPort: tcpPort, targetPort: 80, mode: 'tcp' }], backends: be },
    { serviceId: 's2', name: 'api', ports: [{ protocol: 'tcp', publishedPort: httpPort, targetPort: 80, mode: 'http' }], backends: be },
    { serviceId: 's3', name: 'dns', ports: [{ protocol: 'udp', publishedPort: udpPort, targetPort: 53, mode: 'tcp' }], backends: [{ addr: `${LO}:${(udpBackend.address() as net.AddressInfo).port}`, healthy: true }] },
  ]);
  for (let i = 0; i < 3; i++) t.is(await get(tcpPort), 'ok\n');
  for (let i = 0; i < 5; i++) t.is(await get(httpPort), 'ok\n');
  const u = dgram.createSocket('udp4');
  t.teardown(() => u.close());
  const echoed = new Promise<string>((r) => u.once('message', (m) => r(m.toString())));
  u.send('ping', udpPort, LO);
  t.is(await echoed, 'ping');

  const registry = new client.Registry();
  registerMeshMetrics(registry, () => mesh.stats());
  // TCP byte counts are added when a connection closes
  let text = '';
  for (let i = 0; i < 50; i++) {
    text = await registry.metrics();
    if ((value(text, 'shoal_mesh_connections_active{service="web",protocol="tcp",port="' + tcpPort + '",mode="tcp"}') ?? 1) === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const l = (svc: string, proto: string, port: number, mode: string) => `{service="${svc}",protocol="${proto}",port="${port}",mode="${mode}"}`;
  const web = l('web', 'tcp', tcpPort, 'tcp');
  const api = l('api', 'tcp', httpPort, 'http');
  const dns = l('dns', 'udp', udpPort, 'tcp');
  t.is(value(text, `shoal_mesh_connections_total${web}`), 3);
  t.is(value(text, `shoal_mesh_requests_total${web}`), 3);
  t.is(value(text, `shoal_mesh_requests_total${api}`), 5);
  t.is(value(text, `shoal_mesh_requests_total${dns}`), 1);
  t.is(value(text, `shoal_mesh_connections_total${dns}`), 1);
  t.true((value(text, `shoal_mesh_received_bytes_total${web}`) ?? 0) > 0);
  t.true((value(text, `shoal_mesh_sent_bytes_total${web}`) ?? 0) > 0);
  t.is(value(text, `shoal_mesh_backend_errors_total${web}`), 0);
  t.is(value(text, `shoal_mesh_retries_total${api}`), 0);
  t.is(value(text, `shoal_mesh_latency_seconds_count${api}`), 5);
  t.is(value(text, `shoal_mesh_latency_seconds_bucket{service="api",protocol="tcp",port="${httpPort}",mode="http",le="+Inf"}`), 5);
  t.is(value(text, `shoal_mesh_latency_seconds_count${dns}`), undefined, 'no latency histogram for UDP');

  writeFileSync(join(dir, 'm.txt'), text);
  const out = execFileSync('sh', ['-c', `promtool check metrics < ${join(dir, 'm.txt')} 2>&1; echo rc=$?`]).toString();
  t.regex(out, /rc=0$/m, out);
});
