// Public surface of lb (ingress routing mesh): the Mesh the agent drives with
// a desired table, its data shapes, and the PROXY protocol codec.

export { Mesh } from './mesh.js';
export type { MeshPort, MeshService, MeshBackend, MeshOptions, MeshMode, PortStatus, ProxyProtocolVersion } from './types.js';
export type { PortStatsSnapshot } from './stats.js';
export { LATENCY_BUCKETS } from './stats.js';
export { encodeProxyHeader, parseProxyHeader, type ParsedProxyHeader, type ProxyAddresses } from './proxy-protocol.js';
export { meshTable, validateMeshLabels, LABEL_MODE, LABEL_PROXY_PROTOCOL, type MeshTableOptions } from './table.js';
