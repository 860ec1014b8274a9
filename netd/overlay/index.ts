// Owns the public surface of netd/overlay: the in-process driver and its out-of-process twin.
export { OverlayDriver, type OverlayNetwork, type AttachOptions, type Peer, type PeerDiff } from './driver.js';
export { RemoteOverlayDriver } from './remote.js';
export { bridgeName, vxlanName, hostVethName, OVERLAY_MTU } from './names.js';
export { IPT_CHAIN, NFT_TABLE } from './firewall.js';
export type { FdbEntry, NeighEntry } from './rtnl.js';
