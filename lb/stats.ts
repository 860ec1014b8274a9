// Owns per-port counters of the mesh: plain numbers bumped on the hot path,
// read by Mesh.stats() (and later exposed to Prometheus by the agent).

/** latency bucket upper bounds in seconds (Prometheus-style, cumulative on export) */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface PortStatsSnapshot {
  serviceId: string;
  name: string;
  protocol: 'tcp' | 'udp';
  publishedPort: number;
  mode: 'tcp' | 'http';
  /** client connections accepted (TCP/HTTP) or flows created (UDP) */
  connectionsTotal: number;
  connectionsActive: number;
  /** HTTP requests, or UDP datagrams from clients; TCP: same as connectionsTotal */
  requests: number;
  /** bytes from clients / to clients */
  bytesIn: number;
  bytesOut: number;
  /** failed backend connects, resets and timeouts */
  backendErrors: number;
  /** attempts made on another backend after a failure */
  retries: number;
  /** requests or connections refused because no backend could take them */
  noBackend: number;
  /** HTTP: request to response end; TCP: accept to backend connected (seconds) */
  latency: { buckets: number[]; counts: number[]; sum: number; count: number };
}

export class PortStats {
  connectionsTotal = 0;
  connectionsActive = 0;
  requests = 0;
  bytesIn = 0;
  bytesOut = 0;
  backendErrors = 0;
  retries = 0;
  noBackend = 0;
  private readonly counts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  private sum = 0;
  private count = 0;

  /** record one latency in milliseconds */
  observeMs(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && s > LATENCY_BUCKETS[i]) i++;
    this.counts[i]++;
    this.sum += s;
    this.count++;
  }

  snapshot(id: { serviceId: string; name: string; protocol: 'tcp' | 'udp'; publishedPort: number; mode: 'tcp' | 'http' }): PortStatsSnapshot {
    return {
      ...id,
      connectionsTotal: this.connectionsTotal,
      connectionsActive: this.connectionsActive,
      requests: this.requests,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      backendErrors: this.backendErrors,
      retries: this.retries,
      noBackend: this.noBackend,
      latency: { buckets: LATENCY_BUCKETS, counts: this.counts.slice(), sum: this.sum, count: this.count },
    };
  }
}
