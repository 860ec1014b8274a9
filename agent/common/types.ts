// Owns the object model: Docker Swarm API JSON shapes shared by the store, the
// API server, the orchestrators and the CLI. Desired state lives in `Spec`,
// observed state in `Status`; `Version.Index` is the concurrency token.

export interface Version { Index: number }
export type Labels = Record<string, string>;

export interface Meta {
  ID: string;
  Version: Version;
  CreatedAt: string;
  UpdatedAt: string;
}

// ---- cluster ----
export interface SwarmSpec {
  Name?: string;
  Labels?: Labels;
  Orchestration?: { TaskHistoryRetentionLimit?: number };
  Raft?: { SnapshotInterval?: number; KeepOldSnapshots?: number; LogEntriesForSlowFollowers?: number; ElectionTick?: number; HeartbeatTick?: number };
  Dispatcher?: { HeartbeatPeriod?: number };
  CAConfig?: { NodeCertExpiry?: number; ExternalCAs?: unknown[]; SigningCACert?: string; SigningCAKey?: string; ForceRotate?: number };
  TaskDefaults?: { LogDriver?: { Name: string; Options?: Record<string, string> } };
  EncryptionConfig?: { AutoLockManagers?: boolean };
}

export interface TLSInfo { TrustRoot: string; CertIssuerSubject: string; CertIssuerPublicKey: string }

export interface Cluster extends Meta {
  Spec: SwarmSpec;
  TLSInfo: TLSInfo;
  RootRotationInProgress: boolean;
  DefaultAddrPool: string[] | null;
  SubnetSize: number;
  DataPathPort: number;
  JoinTokens: { Worker: string; Manager: string };
}

// ---- nodes ----
export type NodeRole = 'worker' | 'manager';
export type NodeAvailability = 'active' | 'pause' | 'drain';
export type NodeState = 'unknown' | 'down' | 'ready' | 'disconnected';

export interface NodeSpec { Name?: string; Labels?: Labels; Role: NodeRole; Availability: NodeAvailability }

export interface NodeDescription {
  Hostname: string;
  Platform: { Architecture: string; OS: string };
  Resources: { NanoCPUs: number; MemoryBytes: number };
  Engine: { EngineVersion: string; Labels?: Labels; Plugins: { Type: string; Name: string }[] };
  TLSInfo?: TLSInfo;
}

export interface Node extends Meta {
  Spec: NodeSpec;
  Description: NodeDescription;
  Status: { State: NodeState; Message?: string; Addr: string };
  ManagerStatus?: { Leader?: boolean; Reachability: 'unknown' | 'unreachable' | 'reachable'; Addr: string };
  /** the node's own address on each overlay it serves (mesh and SNAT traffic originates from it) */
  Attachments?: { NetworkID: string; Addr: string }[];
}

// ---- services ----
export interface Mount {
  Type: 'bind' | 'volume' | 'tmpfs' | 'npipe';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Labels; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface HealthConfig { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number }

export interface ContainerSpec {
  Image: string;
  Labels?: Labels;
  Command?: string[];
  Args?: string[];
  Hostname?: string;
  Env?: string[];
  Dir?: string;
  User?: string;
  Groups?: string[];
  TTY?: boolean;
  OpenStdin?: boolean;
  ReadOnly?: boolean;
  Mounts?: Mount[];
  StopSignal?: string;
  StopGracePeriod?: number; // nanoseconds
  HealthCheck?: HealthConfig;
  Hosts?: string[];
  DNSConfig?: { Nameservers?: string[]; Search?: string[]; Options?: string[] };
  Init?: boolean;
  Isolation?: string;
  Sysctls?: Record<string, string>;
  CapabilityAdd?: string[];
  CapabilityDrop?: string[];
  Ulimits?: { Name: string; Soft: number; Hard: number }[];
  Secrets?: SecretReference[];
  Configs?: ConfigReference[];
}

// ---- secrets and configs ----
/** where a secret or config appears in the container: a file (Name: path or bare name), owner and mode */
export interface FileTarget { Name: string; UID?: string; GID?: string; Mode?: number }
export interface SecretReference { File?: FileTarget; SecretID: string; SecretName: string }
export interface ConfigReference { File?: FileTarget; Runtime?: Record<string, never>; ConfigID: string; ConfigName: string }

export interface SecretSpec {
  Name: string;
  Labels?: Labels;
  /** base64; write-only: never stored in clear, never returned */
  Data?: string;
  Driver?: { Name: string; Options?: Record<string, string> } | null;
  Templating?: { Name: string; Options?: Record<string, string> } | null;
}
export interface Secret extends Meta {
  Spec: SecretSpec;
  /** internal: the data sealed with the manager's data key (AES-256-GCM); stripped from API answers */
  Sealed?: string;
}

export interface ConfigSpec {
  Name: string;
  Labels?: Labels;
  /** base64 */
  Data?: string;
  Templating?: { Name: string; Options?: Record<string, string> } | null;
}
export interface Config extends Meta { Spec: ConfigSpec }

export interface ResourceSpec { NanoCPUs?: number; MemoryBytes?: number; Pids?: number }

export interface RestartPolicy {
  Condition?: 'none' | 'on-failure' | 'any';
  Delay?: number; // ns
  MaxAttempts?: number;
  Window?: number; // ns
}

export interface Placement {
  Constraints?: string[];
  Preferences?: { Spread?: { SpreadDescriptor: string } }[];
  MaxReplicas?: number;
  Platforms?: { Architecture?: string; OS?: string }[];
}

export interface NetworkAttachmentConfig { Target: string; Aliases?: string[]; DriverOpts?: Record<string, string> }

export interface TaskSpec {
  ContainerSpec: ContainerSpec;
  Resources?: { Limits?: ResourceSpec; Reservations?: ResourceSpec & { GenericResources?: unknown[] } };
  RestartPolicy?: RestartPolicy;
  Placement?: Placement;
  Networks?: NetworkAttachmentConfig[];
  LogDriver?: { Name: string; Options?: Record<string, string> };
  ForceUpdate?: number;
  Runtime?: string;
}

export interface UpdateConfig {
  Parallelism?: number;
  Delay?: number;
  FailureAction?: 'continue' | 'pause' | 'rollback';
  Monitor?: number;
  MaxFailureRatio?: number;
  Order?: 'stop-first' | 'start-first';
}

export interface PortConfig {
  Name?: string;
  Protocol?: 'tcp' | 'udp' | 'sctp';
  TargetPort: number;
  PublishedPort?: number;
  PublishMode?: 'ingress' | 'host';
}

export interface EndpointSpec { Mode?: 'vip' | 'dnsrr'; Ports?: PortConfig[] }

export interface ServiceMode {
  Replicated?: { Replicas?: number };
  Global?: Record<string, never>;
  ReplicatedJob?: { MaxConcurrent?: number; TotalCompletions?: number };
  GlobalJob?: Record<string, never>;
}

export interface ServiceSpec {
  Name: string;
  Labels?: Labels;
  TaskTemplate: TaskSpec;
  Mode: ServiceMode;
  UpdateConfig?: UpdateConfig;
  RollbackConfig?: UpdateConfig;
  Networks?: NetworkAttachmentConfig[];
  EndpointSpec?: EndpointSpec;
}

export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface Service extends Meta {
  Spec: ServiceSpec;
  PreviousSpec?: ServiceSpec;
  Endpoint: { Spec: EndpointSpec; Ports?: PortConfig[]; VirtualIPs?: { NetworkID: string; Addr: string }[] };
  UpdateStatus?: { State: UpdateState; StartedAt?: string; CompletedAt?: string; Message: string };
  ServiceStatus?: { RunningTasks: number; DesiredTasks: number; CompletedTasks: number };
  /** internal: bumped on every spec change; tasks record the one they were made from */
  SpecVersion?: number;
}

// ---- tasks ----
export const TASK_STATES = [
  'new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting',
  'running', 'complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned',
] as const;
export type TaskState = typeof TASK_STATES[number];

export interface TaskStatus {
  Timestamp: string;
  State: TaskState;
  Message: string;
  Err?: string;
  ContainerStatus?: { ContainerID?: string; PID?: number; ExitCode?: number };
  PortStatus?: { Ports?: PortConfig[] };
}

export interface NetworkAttachment { Network: Network; Addresses: string[] }

export interface Task extends Meta {
  Name?: string;
  Labels?: Labels;
  Spec: TaskSpec;
  ServiceID: string;
  Slot?: number;
  NodeID?: string;
  Status: TaskStatus;
  DesiredState: TaskState;
  NetworksAttachments?: NetworkAttachment[];
  GenericResources?: unknown[];
  /** internal: the service's SpecVersion this task was made from */
  SpecVersion?: number;
  /** the service's name and labels, so a worker can name containers without reading services */
  ServiceAnnotations?: { Name: string; Labels?: Labels };
}

// ---- networks (swarm scope) ----
export interface NetworkSpec {
  Name: string;
  Labels?: Labels;
  DriverConfiguration?: { Name: string; Options?: Record<string, string> };
  IPv6Enabled?: boolean;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  IPAMOptions?: { Driver?: { Name: string }; Configs?: { Subnet?: string; Range?: string; Gateway?: string }[] };
  Scope?: string;
}

export interface Network extends Meta {
  Spec: NetworkSpec;
  DriverState?: { Name: string; Options?: Record<string, string> };
  IPAMOptions?: { Driver: { Name: string }; Configs: { Subnet: string; Gateway: string; Range?: string }[] };
}

export type Kind = 'cluster' | 'nodes' | 'services' | 'tasks' | 'networks' | 'secrets' | 'configs';
export interface KindMap { cluster: Cluster; nodes: Node; services: Service; tasks: Task; networks: Network; secrets: Secret; configs: Config }
export type AnyObject = KindMap[Kind];
