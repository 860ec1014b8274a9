// registerDnsMetrics: the DNS server's own counters exposed as shoal_dns_*
// (queries by type and result, TCP connections, answer latency histogram),
// checked against answers the server really gave and with `promtool check metrics`.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import client from 'prom-client';
import { DnsServer, ServiceRecords } from '../../netd/dns/index.js';
import { registerDnsMetrics } from '../../agent/metrics/dns.js';

function query(name: string, qtype = 1): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x1234, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([h, ...labels, Buffer.from([0]), tail]);
}

test('shoal_dns_* follow the server counters and pass promtool', (t) => {
  const records = new ServiceRecords({ ownSingleLabels: true });
  records.setNetworkRecords('n1', { subnet: '10.0.1.0/24', name: 'appnet', services: [{ name: 'web', vip: '10.0.1.2', taskAddrs: ['10.0.1.3'], endpointMode: 'vip' }], tasks: [] });
  const dns = new DnsServer({ records, upstream: [] });
  t.teardown(() => dns.close());
  const client1 = '10.0.1.9';
  t.truthy(dns.answer(query('web'), client1));
  t.truthy(dns.answer(query('web', 28), client1));
  t.truthy(dns.answer(query('nosuch'), client1));
  t.is(dns.answer(Buffer.from([1, 2, 3]), client1), undefined);

  const registry = new client.Registry();
  let stats: ReturnType<DnsServer['stats']> | undefined;
  registerDnsMetrics(registry, () => stats);
  return (async () => {
    t.false((await registry.metrics()).includes('shoal_dns_queries_total{'), 'no samples before the server exists');
    stats = dns.stats();
    const text = await registry.metrics();
    t.regex(text, /shoal_dns_queries_total\{type="A",result="noerror"\} 1/);
    t.regex(text, /shoal_dns_queries_total\{type="AAAA",result="noerror"\} 1/);
    t.regex(text, /shoal_dns_queries_total\{type="A",result="nxdomain"\} 1/);
    t.regex(text, /shoal_dns_queries_total\{type="unknown",result="dropped"\} 1/);
    t.regex(text, /shoal_dns_answer_seconds_count 3/);
    t.regex(text, /shoal_dns_answer_seconds_bucket\{le="\+Inf"\} 3/);
    t.regex(text, /shoal_dns_tcp_connections_open 0/);
    const out = execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    t.is(out.trim(), '', out);
  })();
});
