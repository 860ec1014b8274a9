// Owns the public surface of netd/ipam: subnet and address allocation, VNIs, MACs.
export { Ipam, type IpamOptions, type IpamState, type NetworkPoolState, type SubnetLease, type SubnetRequest } from './ipam.js';
export { VniAllocator, VNI_FIRST, type VniState } from './vni.js';
export { macFromIPv4, parseSubnet, ipToInt, intToIp, type Subnet } from './addr.js';
