// Owns the Prometheus view of netd's DNS server (shoal_dns_*): queries by type
// and result, TCP connections, and the answer-latency histogram, all read from
// the server's own counters (NetAgent.dnsStats()) at scrape time, so the
// exposition never drifts from what the server counted.
import client from 'prom-client';
import type { DnsStats } from '../../netd/dns/stats.js';

type Value = { value: number; labels?: Record<string, string | number>; metricName?: string };

/** a metric whose samples are computed at scrape time (prom-client's registerMetric contract) */
function scraped(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Value[]) {
  return {
    name, help, type, aggregator: 'sum' as const,
    get: async () => ({ name, help, type, aggregator: 'sum' as const, values: values() }),
    reset: () => undefined,
  };
}

export function registerDnsMetrics(registry: client.Registry, stats: () => DnsStats | undefined): void {
  const add = (m: ReturnType<typeof scraped>) => registry.registerMetric(m as unknown as client.Metric);
  add(scraped('shoal_dns_queries_total', 'DNS queries answered by the overlay DNS server, by query type and result', 'counter', () => {
    const s = stats();
    if (!s) return [];
    const out: Value[] = [];
    for (const [type, results] of Object.entries(s.queries)) {
      for (const [result, n] of Object.entries(results)) out.push({ value: n ?? 0, labels: { type, result } });
    }
    return out;
  }));
  add(scraped('shoal_dns_tcp_connections_total', 'DNS-over-TCP connections, by outcome (accepted, rejected at the limit, closed idle)', 'counter', () => {
    const s = stats();
    return s ? [
      { value: s.tcp.accepted, labels: { outcome: 'accepted' } },
      { value: s.tcp.rejected, labels: { outcome: 'rejected' } },
      { value: s.tcp.timedOut, labels: { outcome: 'timed_out' } },
    ] : [];
  }));
  add(scraped('shoal_dns_tcp_connections_open', 'DNS-over-TCP connections open now', 'gauge', () => {
    const s = stats();
    return s ? [{ value: s.tcp.open }] : [];
  }));
  add(scraped('shoal_dns_answer_seconds', 'Time from receiving a DNS query to having its answer (forwarded queries included)', 'histogram', () => {
    const s = stats();
    if (!s) return [];
    const name = 'shoal_dns_answer_seconds';
    return [
      ...s.latency.buckets.map((b) => ({ value: b.count, labels: { le: b.le }, metricName: `${name}_bucket` })),
      { value: s.latency.count, labels: { le: '+Inf' }, metricName: `${name}_bucket` },
      { value: s.latency.sumSeconds, metricName: `${name}_sum` },
      { value: s.latency.count, metricName: `${name}_count` },
    ];
  }));
}
