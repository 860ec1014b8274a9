// Owns the `shoal agent` daemon: one process per host running the node
// (manager and/or worker) and the Docker-compatible API; exits cleanly on
// SIGTERM/SIGINT and leaves task containers running for the next start.
import { hostname } from 'node:os';
import { ApiServer } from '../api/server.js';
import { logger } from '../common/log.js';
import { SwarmNode } from '../node.js';
import { Metrics } from '../metrics/metrics.js';
import { splitHostPort } from '../addr.js';
import { parseStoreFlag } from '../manager/ha/store-mode.js';

const log = logger('agent');

export interface AgentOptions {
  stateDir: string;
  apiSocket: string;
  hostname?: string;
  dockerHost: string;
  advertiseAddr?: string;
  listenAddr: string;
  metricsAddr: string;
  dataPlane?: 'on' | 'off';
  /** embedded | etcd | etcd://host:port[,…]: where a swarm this node initializes keeps its state */
  store?: string;
  etcdBin?: string;
}

export const AGENT_DEFAULTS = {
  stateDir: '/var/lib/shoal',
  apiSocket: '/run/shoal/docker.sock',
  dockerHost: 'unix:///var/run/docker.sock',
  listenAddr: '0.0.0.0:2377',
  metricsAddr: '0.0.0.0:9323',
  store: 'embedded',
  etcdBin: 'etcd',
};

export async function runAgent(opts: AgentOptions): Promise<{ close(): Promise<void> }> {
  const node = new SwarmNode({
    stateDir: opts.stateDir, hostname: opts.hostname || hostname(), dockerHost: opts.dockerHost,
    listenAddr: opts.listenAddr, advertiseAddr: opts.advertiseAddr, dataPlane: opts.dataPlane !== 'off',
    store: parseStoreFlag(opts.store), etcdBin: opts.etcdBin,
  });
  await node.start();
  const api = new ApiServer({ backend: node, dockerHost: opts.dockerHost });
  await api.listenUnix(opts.apiSocket);
  const metrics = new Metrics(() => node.managerPlane, () => node.dataPlane);
  const m = splitHostPort(opts.metricsAddr, 9323);
  const metricsPort = await metrics.listen(m.host, m.port);
  log.info({ socket: opts.apiSocket, stateDir: opts.stateDir, metricsPort }, 'shoal agent ready');
  let closing: Promise<void> | undefined;
  return {
    close: () => (closing ??= (async () => {
      await api.close();
      await metrics.close();
      await node.close();
    })()),
  };
}
