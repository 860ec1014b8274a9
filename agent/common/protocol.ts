// Owns the cluster protocol on the management port (2377): HTTPS with mutual
// TLS. A joining node first fetches the CA (and pins it by the token's
// digest), then proves its token and gets a certificate; afterwards every call
// is authenticated by that certificate (CN = node id, OU = swarm-<role>).
import type { NetMap } from './netmap.js';
import type { NodeDescription, Task, TaskStatus } from './types.js';

export const PATHS = {
  ca: '/v1/ca',
  join: '/v1/join',
  session: '/v1/session',
  status: '/v1/status',
  heartbeat: '/v1/heartbeat',
  /** a worker uploads a task's log stream here (chunked body; ?id=<request id>) */
  logs: '/v1/logs',
} as const;

/** the manager asks a worker to stream one task's container logs up to PATHS.logs */
export interface LogsRequest {
  /** request id, echoed in the upload's query */
  id: string;
  taskId: string;
  follow: boolean;
  /** lines per task: a number or 'all' */
  tail: string;
  /** dockerd's since (unix seconds, may have a fraction), or '' */
  since: string;
}

/** secret or config payloads a worker needs for its assigned tasks (data base64) */
export interface TaskFile { id: string; name: string; data: string }
export interface AssignedFiles { secrets: TaskFile[]; configs: TaskFile[] }

export interface JoinRequest {
  token: string;
  hostname: string;
  advertiseAddr: string;
  /** the node's public key (SPKI, base64) to be certified */
  publicKey: string;
  description: NodeDescription;
  availability?: 'active' | 'pause' | 'drain';
  /** the node can run an etcd member (etcd installed); a manager join to an agent-managed etcd needs it */
  canRunEtcd?: boolean;
}

export interface JoinResponse {
  nodeId: string;
  role: 'worker' | 'manager';
  certPem: string;
  caPem: string;
  managers: { nodeId: string; addr: string }[];
  heartbeatPeriodMs: number;
  /** a manager joining an agent-managed etcd cluster: its member's start-up (absent for an external etcd) */
  etcd?: {
    initialCluster: string;
    /** --initial-cluster-token */
    clusterToken: string;
    cert: { certPem: string; keyPem: string; caPem: string };
    clientURLs: string[];
  };
}

/** lines (NDJSON) the manager streams down a session */
export type SessionMessage =
  | { type: 'hello'; nodeId: string; heartbeatPeriodMs: number; managers: { nodeId: string; addr: string }[]; leader?: string }
  | { type: 'assignments'; tasks: Task[] }
  | { type: 'netmap'; map: NetMap }
  | { type: 'ping' }
  | { type: 'logs'; request: LogsRequest }
  | { type: 'logs-cancel'; id: string }
  /** sent before an assignments set: the secrets and configs its tasks use, nothing else */
  | { type: 'files'; files: AssignedFiles }
  /** `docker node promote`: the worker becomes a manager with this certificate and etcd member */
  | { type: 'promote'; certPem: string; keyPem: string; etcd: NonNullable<JoinResponse['etcd']> };

export interface StatusReport { updates: { taskId: string; status: TaskStatus }[] }

export interface SessionOpen {
  description: NodeDescription;
  addr: string;
  /** the node runs a data plane and wants network maps (default true) */
  netmap?: boolean;
}
