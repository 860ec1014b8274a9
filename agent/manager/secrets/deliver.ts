// Owns which secret and config payloads go to a node: exactly those that the
// node's assigned, still-wanted tasks refer to, opened from the store with
// the data key just before they are sent down the node's session.
import type { AssignedFiles, TaskFile } from '../../common/protocol.js';
import { TASK_STATES, type Task } from '../../common/types.js';
import type { ReadView } from '../store/types.js';
import { dataKeyFor } from './datakey.js';

const RUNNING = TASK_STATES.indexOf('running');

/** secret and config IDs that tasks wanted running use */
export function referencedFiles(tasks: Task[]): { secrets: Set<string>; configs: Set<string> } {
  const secrets = new Set<string>();
  const configs = new Set<string>();
  for (const t of tasks) {
    if (TASK_STATES.indexOf(t.DesiredState) > RUNNING) continue;
    for (const r of t.Spec.ContainerSpec.Secrets ?? []) secrets.add(r.SecretID);
    for (const r of t.Spec.ContainerSpec.Configs ?? []) configs.add(r.ConfigID);
  }
  return { secrets, configs };
}

/** opens one secret's data (base64-free Buffer), or undefined when it is gone */
export function openSecret(store: ReadView, id: string): Buffer | undefined {
  const s = store.get('secrets', id);
  if (!s?.Sealed) return undefined;
  return dataKeyFor(store).open(s.Sealed, id);
}

export function openConfig(store: ReadView, id: string): Buffer | undefined {
  const c = store.get('configs', id);
  return c?.Spec.Data !== undefined ? Buffer.from(c.Spec.Data, 'base64') : undefined;
}

export function filesFor(store: ReadView, tasks: Task[]): AssignedFiles {
  const refs = referencedFiles(tasks);
  const secrets: TaskFile[] = [];
  const configs: TaskFile[] = [];
  for (const id of refs.secrets) {
    const data = openSecret(store, id);
    if (data) secrets.push({ id, name: store.get('secrets', id)!.Spec.Name, data: data.toString('base64') });
  }
  for (const id of refs.configs) {
    const data = openConfig(store, id);
    if (data) configs.push({ id, name: store.get('configs', id)!.Spec.Name, data: data.toString('base64') });
  }
  return { secrets, configs };
}
