// Owns the routing mesh's Prometheus metrics (shoal_mesh_*): per service and
// published port — connections, requests, bytes, backend errors, retries,
// refusals for want of a backend, and a latency histogram — read from the
// mesh's own counters at scrape time (lb keeps plain numbers on its hot path).
// A listener that is closed and reopened starts its counters again from zero,
// which Prometheus treats as a counter reset.
import type client from 'prom-client';
import type { PortStatsSnapshot } from '../../lb/index.js';

type Labels = Record<string, string | number>;
interface Value { value: number; labels: Labels; metricName?: string }
interface MetricData { name: string; help: string; type: 'counter' | 'gauge' | 'histogram'; values: Value[]; aggregator: 'sum' }

/** a scrape-time metric in prom-client's duck-typed Metric shape */
class SnapshotMetric {
  readonly aggregator = 'sum' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricData['type'],
    private readonly values: (rows: PortStatsSnapshot[]) => Value[],
    private readonly stats: () => PortStatsSnapshot[],
  ) {}

  get(): MetricData {
    return { name: this.name, help: this.help, type: this.type, values: this.values(this.stats()), aggregator: this.aggregator };
  }

  reset(): void {}
}

function labels(s: PortStatsSnapshot): Labels {
  return { service: s.name, protocol: s.protocol, port: String(s.publishedPort), mode: s.mode };
}

function histogram(name: string, rows: PortStatsSnapshot[]): Value[] {
  const out: Value[] = [];
  for (const s of rows) {
    const base = labels(s);
    const { buckets, counts, sum, count } = s.latency;
    let acc = 0;
    for (let i = 0; i < buckets.length; i++) {
      acc += counts[i] ?? 0;
      out.push({ metricName: `${name}_bucket`, labels: { ...base, le: buckets[i] }, value: acc });
    }
    out.push({ metricName: `${name}_bucket`, labels: { ...base, le: '+Inf' }, value: count });
    out.push({ metricName: `${name}_sum`, labels: base, value: sum });
    out.push({ metricName: `${name}_count`, labels: base, value: count });
  }
  return out;
}

const per = (pick: (s: PortStatsSnapshot) => number) => (rows: PortStatsSnapshot[]) => rows.map((s) => ({ labels: labels(s), value: pick(s) }));

/** registers the shoal_mesh_* metrics; `stats` is called on every scrape (NetAgent.meshStats) */
export function registerMeshMetrics(registry: client.Registry, stats: () => PortStatsSnapshot[]): void {
  const metrics = [
    new SnapshotMetric('shoal_mesh_connections_total', 'Client connections accepted (TCP and HTTP mode) or UDP flows created, per published port', 'counter', per((s) => s.connectionsTotal), stats),
    new SnapshotMetric('shoal_mesh_connections_active', 'Client connections (or UDP flows) open now, per published port', 'gauge', per((s) => s.connectionsActive), stats),
    new SnapshotMetric('shoal_mesh_requests_total', 'HTTP requests (HTTP mode), connections (TCP mode) or datagrams from clients (UDP)', 'counter', per((s) => s.requests), stats),
    new SnapshotMetric('shoal_mesh_received_bytes_total', 'Bytes received from clients, per published port', 'counter', per((s) => s.bytesIn), stats),
    new SnapshotMetric('shoal_mesh_sent_bytes_total', 'Bytes sent to clients, per published port', 'counter', per((s) => s.bytesOut), stats),
    new SnapshotMetric('shoal_mesh_backend_errors_total', 'Backend connects that failed, were reset or timed out', 'counter', per((s) => s.backendErrors), stats),
    new SnapshotMetric('shoal_mesh_retries_total', 'Attempts made on another backend after a failure', 'counter', per((s) => s.retries), stats),
    new SnapshotMetric('shoal_mesh_no_backend_total', 'Requests or connections refused because no backend could take them', 'counter', per((s) => s.noBackend), stats),
    new SnapshotMetric(
      'shoal_mesh_latency_seconds',
      'HTTP mode: request to end of response; TCP mode: accept to backend connected',
      'histogram',
      (rows) => histogram('shoal_mesh_latency_seconds', rows.filter((s) => s.protocol === 'tcp')),
      stats,
    ),
  ];
  for (const m of metrics) registry.registerMetric(m as unknown as client.Metric);
}
