// Owns the cluster object as the API shows it: inspect (with join tokens) and
// spec updates with optimistic concurrency; token rotation is delegated to
// the control plane, which owns the secrets.
import { invalid, unavailable } from '../../common/errors.js';
import type { Cluster, SwarmSpec } from '../../common/types.js';
import type { ReadView, Store } from '../store/types.js';
import { badSpec, fromStore } from './errors.js';

export function getCluster(view: ReadView): Cluster {
  const c = view.list('cluster')[0];
  if (!c) throw unavailable('This node is not part of a swarm');
  return structuredClone(c);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function updateClusterSpec(store: Store, body: unknown, version: number): Promise<Cluster> {
  if (!Number.isInteger(version) || version < 0) throw invalid(`invalid swarm version '${version}'`);
  if (!isObj(body)) throw invalid('invalid JSON: body must be a swarm Spec object');
  const spec = body as SwarmSpec;
  for (const k of ['Labels', 'Orchestration', 'Raft', 'Dispatcher', 'CAConfig', 'TaskDefaults', 'EncryptionConfig'] as const) {
    if (spec[k] !== undefined && spec[k] !== null && !isObj(spec[k])) throw invalid(`invalid JSON: ${k} must be an object`);
  }
  if ((spec.Dispatcher?.HeartbeatPeriod ?? 0) < 0) throw badSpec('heartbeat time period cannot be a negative duration');
  const retention = spec.Orchestration?.TaskHistoryRetentionLimit;
  if (retention !== undefined && retention !== null && (!Number.isInteger(retention) || retention < 0)) {
    throw invalid('invalid JSON: Orchestration.TaskHistoryRetentionLimit must be a non-negative integer');
  }
  try {
    const updated = await store.update((tx) => {
      const c = getCluster(tx);
      if (spec.Name && c.Spec.Name && spec.Name !== c.Spec.Name) throw badSpec('modification of cluster name is not allowed');
      const name = c.Spec.Name || spec.Name || 'default';
      c.Spec = { Name: name, ...structuredClone(spec) };
      c.Spec.Name = name;
      return tx.update('cluster', c, version);
    });
    return structuredClone(store.get('cluster', updated.ID)!);
  } catch (err) {
    throw fromStore(err);
  }
}
