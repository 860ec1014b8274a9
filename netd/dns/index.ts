// Public surface of netd's service-discovery DNS: the server, the record
// tables the agent feeds, and the stats shape for the metrics exporter.
export { DnsServer, type DnsServerOptions } from './server.js';
export { ServiceRecords, type Records, type NetworkRecords, type ServiceEntry, type TaskEntry } from './records.js';
export { LATENCY_BUCKETS, type DnsStats, type DnsResult } from './stats.js';
export { parseUpstream, resolvConfNameservers } from './forwarder.js';
