// Owns swarmkit's checks on a service's secret and config references
// (validateSecretRefsSpec, checkSecretExistence and their config twins):
// well-formed, no two on one target, and every referenced object exists.
import type { ServiceSpec } from '../../common/types.js';
import type { ReadView } from '../store/types.js';
import { badSpec } from './errors.js';

interface Ref { id: string; name: string; target?: string; runtime: boolean }

function check(view: ReadView, kind: 'secrets' | 'configs', refs: Ref[]): void {
  const word = kind === 'secrets' ? 'secret' : 'config';
  const byTarget = new Map<string, string>();
  for (const r of refs) {
    if (!r.id || !r.name) throw badSpec(`malformed ${word} reference`);
    if (r.runtime) continue;
    if (r.target === undefined) throw badSpec(`malformed file ${word} reference`);
    const prev = byTarget.get(r.target);
    if (prev !== undefined) throw badSpec(`${word} references '${prev}' and '${r.name}' have a conflict on target '${r.target}'`);
    byTarget.set(r.target, r.name);
  }
  const missing = refs.filter((r) => { const o = view.get(kind, r.id); return !o || o.Spec.Name !== r.name; }).map((r) => r.name);
  if (missing.length) throw badSpec(`${word}${missing.length > 1 ? 's' : ''} not found: ${missing.join(', ')}`);
}

export function checkFileRefs(view: ReadView, spec: ServiceSpec): void {
  const cs = spec.TaskTemplate?.ContainerSpec;
  if (!cs) return;
  check(view, 'secrets', (cs.Secrets ?? []).map((r) => ({ id: r?.SecretID, name: r?.SecretName, target: r?.File?.Name, runtime: false })));
  check(view, 'configs', (cs.Configs ?? []).map((r) => ({ id: r?.ConfigID, name: r?.ConfigName, target: r?.File?.Name, runtime: !!r?.Runtime && !r?.File })));
}
