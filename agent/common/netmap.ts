// Owns the network map a manager sends each node: the overlays the node
// serves (with its own address on each), every node's underlay address, and
// the services and task endpoints on those overlays — all a node needs to
// program VXLAN peers, answer DNS, balance VIPs and run the routing mesh.
import type { Network, PortConfig, Service, Task } from './types.js';

export interface NetMapNetwork {
  id: string;
  name: string;
  vni: number;
  subnet: string;     // CIDR
  gateway: string;    // shared gateway address on every node
  nodeAddr: string;   // this node's own address, CIDR
  ingress: boolean;
}

/** a task reduced to what the data path needs */
export type NetMapTask = Pick<Task, 'ID' | 'ServiceID' | 'Slot' | 'NodeID' | 'DesiredState'> & {
  Status: Pick<Task['Status'], 'State'>;
  NetworksAttachments?: { Network: Pick<Network, 'ID'>; Addresses: string[] }[];
};

export type NetMapService = Pick<Service, 'ID'> & {
  Spec: Pick<Service['Spec'], 'Name' | 'Labels'> & { EndpointSpec?: { Mode?: 'vip' | 'dnsrr'; Ports?: PortConfig[] } };
  Endpoint: Service['Endpoint'];
};

export interface NetMap {
  networks: NetMapNetwork[];
  /** node id → underlay address (VTEP) and its own overlay addresses */
  nodes: Record<string, { addr: string; attachments: { networkId: string; addr: string }[] }>;
  services: NetMapService[];
  /** every live task with an address on one of this node's networks */
  tasks: NetMapTask[];
}
