// Owns VXLAN network identifiers: allocated from 4096 upwards as Docker does,
// lowest free first, released when a network is removed. State is plain JSON.
import { conflict, invalid } from '../../agent/common/errors.js';

export const VNI_FIRST = 4096;
export const VNI_LAST = (1 << 24) - 1;

/** Plain-JSON state: network id -> VNI. */
export interface VniState { byNetwork: Record<string, number> }

export class VniAllocator {
  private readonly byNetwork = new Map<string, number>();
  private readonly used = new Set<number>();

  constructor(state?: VniState) {
    for (const [id, vni] of Object.entries(state?.byNetwork ?? {})) this.reserve(id, vni);
  }

  /** Returns the network's VNI, allocating the lowest free one (or `requested`) on first call. */
  allocate(networkId: string, requested?: number): number {
    const have = this.byNetwork.get(networkId);
    if (have !== undefined) return have;
    if (requested !== undefined) return this.reserve(networkId, requested);
    for (let v = VNI_FIRST; v <= VNI_LAST; v++) if (!this.used.has(v)) return this.reserve(networkId, v);
    throw conflict('no free VXLAN network identifier');
  }

  release(networkId: string): void {
    const v = this.byNetwork.get(networkId);
    if (v === undefined) return;
    this.byNetwork.delete(networkId);
    this.used.delete(v);
  }

  get(networkId: string): number | undefined {
    return this.byNetwork.get(networkId);
  }

  toJSON(): VniState {
    return { byNetwork: Object.fromEntries(this.byNetwork) };
  }

  private reserve(networkId: string, vni: number): number {
    if (!Number.isInteger(vni) || vni < 1 || vni > VNI_LAST) throw invalid(`invalid VXLAN id ${vni}`);
    if (this.used.has(vni)) throw conflict(`VXLAN id ${vni} is already in use`);
    this.byNetwork.set(networkId, vni);
    this.used.add(vni);
    return vni;
  }
}
