// Owns the names of the kernel objects netd creates (Linux ifnames are at most 15 characters).
import { createHash } from 'node:crypto';

export const bridgeName = (vni: number) => `shb${vni}`;
export const vxlanName = (vni: number) => `shv${vni}`;
/** host end of a container's veth: one per (network, address) */
export const hostVethName = (vni: number, address: string) =>
  'shc' + createHash('sha1').update(`${vni}/${address}`).digest('hex').slice(0, 10);
export const hostVethAlias = (vni: number, address: string) => `shoal vni=${vni} addr=${address}`;
export const BRIDGE_RE = /^shb(\d+)$/;
export const OVERLAY_MTU = 1450;
