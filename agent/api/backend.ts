// Owns the contract between the Docker API server and the node it fronts:
// swarm membership (init/join/leave, local state) and, on managers, the
// control plane's store. The API layer never reaches past this interface.
import type { NodeRole, SwarmSpec } from '../common/types.js';
import type { Store } from '../manager/store/types.js';

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked';

export interface LocalSwarmInfo {
  NodeID: string;
  NodeAddr: string;
  LocalNodeState: LocalNodeState;
  ControlAvailable: boolean;
  Error: string;
  RemoteManagers: { NodeID: string; Addr: string }[] | null;
}

export interface SwarmInitRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  DataPathAddr?: string;
  DataPathPort?: number;
  DefaultAddrPool?: string[] | null;
  SubnetSize?: number;
  ForceNewCluster?: boolean;
  Spec?: SwarmSpec;
  AutoLockManagers?: boolean;
  Availability?: string;
}

export interface SwarmJoinRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  DataPathAddr?: string;
  RemoteAddrs: string[];
  JoinToken: string;
  Availability?: string;
}

/** what a manager exposes to the API */
export interface ControlPlane {
  store: Store;
  /** replaces the join token of `role` (the old one stops working) */
  rotateJoinToken(role: NodeRole): Promise<void>;
}

export interface SwarmBackend {
  /** node name as `node ls` shows it */
  readonly hostname: string;
  info(): LocalSwarmInfo;
  /** returns the new node's ID; fails with unavailable() when already in a swarm */
  init(req: SwarmInitRequest): Promise<string>;
  join(req: SwarmJoinRequest): Promise<void>;
  leave(force: boolean): Promise<void>;
  /** the control plane, or throws unavailable() with Docker's "not a swarm manager" message */
  control(): ControlPlane;
}

export const NOT_IN_SWARM =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
export const NOT_A_MANAGER =
  'This node is not a swarm manager. Worker nodes can\'t be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.';
export const ALREADY_IN_SWARM =
  'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';
