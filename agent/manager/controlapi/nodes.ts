// Owns node operations: list with filters, get by ID/hostname/prefix, spec
// update with optimistic concurrency (Role/Availability checked as dockerd
// does), and removal with swarmkit's refusals (managers, nodes not down).
import { invalid } from '../../common/errors.js';
import type { Node, NodeSpec } from '../../common/types.js';
import type { ReadView, Store } from '../store/types.js';
import { fromStore, precondition } from './errors.js';
import { type Filters, nodeFilter } from './filters.js';
import { resolve } from './resolve.js';

export function listNodes(view: ReadView, filters: Filters): Node[] {
  return view.list('nodes', nodeFilter(filters)).map((n) => structuredClone(n));
}

export function getNode(view: ReadView, input: string): Node {
  return structuredClone(resolve(view, 'nodes', input));
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkNodeSpec(body: unknown): NodeSpec {
  if (!isObj(body)) throw invalid('invalid JSON: body must be a NodeSpec object');
  const { Name, Labels, Role, Availability } = body;
  if (Name !== undefined && Name !== null && typeof Name !== 'string') throw invalid('invalid JSON: Name must be a string');
  if (Labels !== undefined && Labels !== null && !(isObj(Labels) && Object.values(Labels).every((v) => typeof v === 'string'))) {
    throw invalid('invalid JSON: Labels must be an object of strings');
  }
  const role = typeof Role === 'string' ? Role.toLowerCase() : Role;
  if (role !== 'worker' && role !== 'manager') throw invalid(`invalid Role: "${typeof Role === 'string' ? Role : ''}"`);
  const avail = typeof Availability === 'string' ? Availability.toLowerCase() : Availability;
  if (avail !== 'active' && avail !== 'pause' && avail !== 'drain') {
    throw invalid(`invalid Availability: "${typeof Availability === 'string' ? Availability : ''}"`);
  }
  const spec: NodeSpec = { Role: role, Availability: avail };
  if (typeof Name === 'string' && Name) spec.Name = Name;
  spec.Labels = (Labels as Record<string, string> | null | undefined) ?? {};
  // Docker's order: Name, Labels, Role, Availability
  return { ...(spec.Name ? { Name: spec.Name } : {}), Labels: spec.Labels, Role: spec.Role, Availability: spec.Availability };
}

export async function updateNode(store: Store, input: string, body: unknown, version: number): Promise<Node> {
  if (!Number.isInteger(version) || version < 0) throw invalid(`invalid node version '${version}'`);
  const spec = checkNodeSpec(body);
  try {
    const updated = await store.update((tx) => {
      const node = structuredClone(resolve(tx, 'nodes', input));
      if (node.Spec.Role === 'manager' && spec.Role === 'worker') {
        const managers = tx.list('nodes', (n) => n.Spec.Role === 'manager');
        if (managers.length <= 1) throw precondition('attempting to demote the last manager of the swarm');
      }
      node.Spec = spec;
      return tx.update('nodes', node, version);
    });
    return structuredClone(store.get('nodes', updated.ID)!);
  } catch (err) {
    throw fromStore(err);
  }
}

export async function removeNode(store: Store, input: string, opts: { force?: boolean } = {}): Promise<void> {
  await store.update((tx) => {
    const node = resolve(tx, 'nodes', input);
    if (node.Spec.Role === 'manager') {
      throw precondition(`node ${node.ID} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`);
    }
    if (!opts.force && node.Status.State === 'ready') throw precondition(`node ${node.ID} is not down and can't be removed`);
    tx.remove('nodes', node.ID);
  });
}
