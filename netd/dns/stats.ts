// Owns the DNS server's counters: queries by type and result, TCP
// connection counts and an answer-latency histogram (cumulative buckets in
// seconds, Prometheus-shaped so a prom-client collector can copy them).
import { TYPE } from './wire.js';

export type DnsResult = 'noerror' | 'nxdomain' | 'servfail' | 'formerr' | 'notimp' | 'forwarded' | 'dropped';

export interface DnsStats {
  /** queries[qtype][result]; qtype is A, AAAA, PTR, … or 'other' / 'unknown' (undecodable) */
  queries: Record<string, Partial<Record<DnsResult, number>>>;
  results: Record<DnsResult, number>;
  tcp: { open: number; accepted: number; rejected: number; timedOut: number };
  latency: { count: number; sumSeconds: number; buckets: { le: number; count: number }[] };
}

export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));

export function typeName(qtype: number): string {
  return TYPE_NAMES.get(qtype) ?? 'other';
}

export class StatsRecorder {
  readonly #byType = new Map<string, Map<DnsResult, number>>();
  readonly #results: Record<DnsResult, number> = { noerror: 0, nxdomain: 0, servfail: 0, formerr: 0, notimp: 0, forwarded: 0, dropped: 0 };
  readonly #buckets = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  #count = 0;
  #sum = 0;
  readonly tcp = { open: 0, accepted: 0, rejected: 0, timedOut: 0 };

  /** Count one query; `startMs` from performance.now() adds it to the latency histogram. */
  record(qtype: string, result: DnsResult, startMs?: number): void {
    let m = this.#byType.get(qtype);
    if (!m) this.#byType.set(qtype, (m = new Map()));
    m.set(result, (m.get(result) ?? 0) + 1);
    this.#results[result]++;
    if (startMs !== undefined) {
      const s = (performance.now() - startMs) / 1000;
      this.#count++;
      this.#sum += s;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        if (s <= LATENCY_BUCKETS[i]!) {
          this.#buckets[i]!++;
          break;
        }
      }
    }
  }

  snapshot(): DnsStats {
    const queries: DnsStats['queries'] = {};
    for (const [t, m] of this.#byType) queries[t] = Object.fromEntries(m);
    let cum = 0;
    const buckets = LATENCY_BUCKETS.map((le, i) => ({ le, count: (cum += this.#buckets[i]!) }));
    return {
      queries,
      results: { ...this.#results },
      tcp: { ...this.tcp },
      latency: { count: this.#count, sumSeconds: this.#sum, buckets },
    };
  }
}
