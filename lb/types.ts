// Owns the lb module's public data shapes: the desired table the agent hands
// to Mesh.setServices, the tunables, and what status()/stats() report.

export type MeshMode = 'tcp' | 'http';
export type ProxyProtocolVersion = 'v1' | 'v2';

export interface MeshPort {
  protocol: 'tcp' | 'udp';
  publishedPort: number;
  targetPort: number;
  /** from service label shoal.mesh.mode; ignored for UDP (default tcp) */
  mode: MeshMode;
  /** from service label shoal.mesh.proxy-protocol; TCP mode only */
  proxyProtocol?: ProxyProtocolVersion;
}

export interface MeshBackend {
  /** task address: "10.0.0.5" (port = targetPort) or "10.0.0.5:8080" / "[fd00::5]:8080" */
  addr: string;
  healthy: boolean;
}

export interface MeshService {
  serviceId: string;
  name: string;
  ports: MeshPort[];
  backends: MeshBackend[];
}

export interface MeshOptions {
  /** address every published port binds to (default 0.0.0.0) */
  bindHost?: string;
  /** local address to connect from for a given backend (e.g. this host's ingress address) */
  sourceAddr?: (backendAddr: string) => string | undefined;
  /** connect timeout per backend attempt (default 1000 ms) */
  connectTimeoutMs?: number;
  /** TCP mode: close a connection idle in both directions this long (default 600 s) */
  tcpIdleTimeoutMs?: number;
  /** UDP: forget a client flow idle this long (default 30 s) */
  udpIdleTimeoutMs?: number;
  /** HTTP mode: time to receive complete request headers (slowloris; default 10 s) */
  httpHeadersTimeoutMs?: number;
  /** HTTP mode: idle keep-alive connection from a client (default 5 s) */
  httpKeepAliveTimeoutMs?: number;
  /** HTTP mode: time for a backend to answer a request (default 60 s, then 504) */
  httpResponseTimeoutMs?: number;
  /** concurrent connections per published port (default 10000) */
  maxConnectionsPerPort?: number;
  /** concurrent UDP flows per published port (default 10000) */
  maxUdpFlows?: number;
  /** retry a listener that could not bind after this long (default 5 s) */
  bindRetryMs?: number;
  /** a backend that failed a connect is skipped for this long, doubling per failure up to 16x (default 2 s) */
  backendPenaltyMs?: number;
}

export type ResolvedOptions = Required<Omit<MeshOptions, 'sourceAddr'>> & Pick<MeshOptions, 'sourceAddr'>;

export function resolveOptions(o: MeshOptions = {}): ResolvedOptions {
  return {
    bindHost: o.bindHost ?? '0.0.0.0',
    sourceAddr: o.sourceAddr,
    connectTimeoutMs: o.connectTimeoutMs ?? 1000,
    tcpIdleTimeoutMs: o.tcpIdleTimeoutMs ?? 600_000,
    udpIdleTimeoutMs: o.udpIdleTimeoutMs ?? 30_000,
    httpHeadersTimeoutMs: o.httpHeadersTimeoutMs ?? 10_000,
    httpKeepAliveTimeoutMs: o.httpKeepAliveTimeoutMs ?? 5_000,
    httpResponseTimeoutMs: o.httpResponseTimeoutMs ?? 60_000,
    maxConnectionsPerPort: o.maxConnectionsPerPort ?? 10_000,
    maxUdpFlows: o.maxUdpFlows ?? 10_000,
    bindRetryMs: o.bindRetryMs ?? 5_000,
    backendPenaltyMs: o.backendPenaltyMs ?? 2_000,
  };
}

/** one row per (service, published port) the agent asked for */
export interface PortStatus {
  serviceId: string;
  name: string;
  protocol: 'tcp' | 'udp';
  publishedPort: number;
  mode: MeshMode;
  /** listening: bound; binding: first attempt under way; failed: bind failed, retried later;
   *  conflict: another service in the table already publishes this port */
  state: 'listening' | 'binding' | 'failed' | 'conflict';
  error?: string;
  /** ISO time of the next bind attempt when failed */
  retryAt?: string;
}
