// Owns secret and config operations with swarmkit's rules and words: create
// (name and size checks, name conflicts), list with filters (id, name,
// names, label), inspect, update (labels only), remove (refused while a
// service uses it). Secret data is sealed with the manager's data key before
// it reaches the store and is never returned; config data is returned as
// Docker returns it.
import { invalid } from '../../common/errors.js';
import { newId } from '../../common/ids.js';
import type { Config, ConfigSpec, Labels, Secret, SecretSpec, Service } from '../../common/types.js';
import { dataKeyFor } from '../secrets/datakey.js';
import type { ReadView, Store } from '../store/types.js';
import { badSpec, fromStore, kindNotFound, nameConflict } from './errors.js';
import { type Filters, matchLabels } from './filters.js';

export type FileKind = 'secrets' | 'configs';
type Obj<K extends FileKind> = K extends 'secrets' ? Secret : Config;

const WORD: Record<FileKind, string> = { secrets: 'secret', configs: 'config' };
const MAX: Record<FileKind, number> = { secrets: 500 * 1024, configs: 1000 * 1024 };
const NAME_RE = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkSpec(kind: FileKind, body: unknown): SecretSpec | ConfigSpec {
  if (!isObj(body)) throw invalid(`invalid JSON: body must be a ${WORD[kind]} spec object`);
  if (body.Name !== undefined && typeof body.Name !== 'string') throw invalid('invalid JSON: Name must be a string');
  if (body.Data !== undefined && body.Data !== null && typeof body.Data !== 'string') throw invalid('invalid JSON: Data must be a base64 string');
  if (body.Labels !== undefined && body.Labels !== null && (!isObj(body.Labels) || !Object.values(body.Labels).every((v) => typeof v === 'string'))) {
    throw invalid('invalid JSON: Labels must be an object of strings');
  }
  return body as unknown as SecretSpec;
}

function checkName(name: string | undefined): void {
  if (!name || name.length > 64 || !NAME_RE.test(name)) {
    throw badSpec('invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]');
  }
}

function decode(kind: FileKind, data: string | undefined | null): Buffer {
  const buf = Buffer.from(data ?? '', 'base64');
  if (buf.length === 0 || buf.length >= MAX[kind]) {
    throw badSpec(`${WORD[kind]} data must be larger than 0 and less than ${MAX[kind]} bytes`);
  }
  return buf;
}

/** the API form: secrets lose their data and sealed blob */
export function present<K extends FileKind>(kind: K, o: Obj<K>): Obj<K> {
  const out = structuredClone(o) as Secret & Config;
  if (kind === 'secrets') {
    delete out.Sealed;
    delete out.Spec.Data;
  }
  return out as Obj<K>;
}

export function resolveFile<K extends FileKind>(view: ReadView, kind: K, input: string): Obj<K> {
  const byId = view.get(kind, input);
  if (byId) return byId as Obj<K>;
  const all = view.list(kind) as Obj<K>[];
  const named = all.filter((o) => o.Spec.Name === input);
  if (named.length === 1) return named[0]!;
  const pre = all.filter((o) => o.ID.startsWith(input));
  if (pre.length === 1 && input) return pre[0]!;
  if (pre.length > 1) throw invalid(`${WORD[kind]} ${input} is ambiguous (${pre.length} matches found)`);
  throw kindNotFound(WORD[kind], input);
}

export async function createFile(store: Store, kind: FileKind, body: unknown): Promise<string> {
  const spec = checkSpec(kind, body);
  checkName(spec.Name);
  const data = decode(kind, spec.Data);
  const id = newId();
  const now = '';
  const labels: Labels = { ...(spec.Labels ?? {}) };
  let obj: Secret | Config;
  if (kind === 'secrets') {
    const s = spec as SecretSpec;
    const sealed = dataKeyFor(store).seal(data, id);
    obj = { ID: id, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now, Spec: { Name: s.Name, Labels: labels, ...(s.Driver ? { Driver: s.Driver } : {}), ...(s.Templating ? { Templating: s.Templating } : {}) }, Sealed: sealed };
  } else {
    const c = spec as ConfigSpec;
    obj = { ID: id, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now, Spec: { Name: c.Name, Labels: labels, Data: data.toString('base64'), ...(c.Templating ? { Templating: c.Templating } : {}) } };
  }
  await store.update((tx) => {
    if (tx.list(kind, (o) => o.Spec.Name === spec.Name).length) throw nameConflict(`${WORD[kind]} ${spec.Name} already exists`);
    tx.create(kind, obj as never);
  });
  return id;
}

export function listFiles<K extends FileKind>(view: ReadView, kind: K, f: Filters): Obj<K>[] {
  for (const key of f.keys()) if (!['id', 'label', 'name', 'names'].includes(key)) throw invalid(`invalid filter '${key}'`);
  const ids = f.get('id') ?? [];
  const names = f.get('name') ?? [];
  const exact = f.get('names') ?? [];
  const labels = f.get('label') ?? [];
  return (view.list(kind) as Obj<K>[])
    .filter((o) => (ids.length === 0 || ids.some((p) => o.ID.startsWith(p)))
      && (names.length === 0 || names.some((p) => o.Spec.Name.startsWith(p)))
      && (exact.length === 0 || exact.includes(o.Spec.Name))
      && matchLabels(o.Spec.Labels, labels))
    .map((o) => present(kind, o));
}

export function getFile<K extends FileKind>(view: ReadView, kind: K, input: string): Obj<K> {
  return present(kind, resolveFile(view, kind, input));
}

/** only Labels may change; the version must be the one the client read */
export async function updateFile(store: Store, kind: FileKind, input: string, body: unknown, version: number): Promise<void> {
  const spec = checkSpec(kind, body);
  try {
    await store.update((tx) => {
      const cur = resolveFile(tx, kind, input);
      // swarmkit: the same data may be sent again (stack deploy does), different data may not
      const sent = spec.Data === undefined || spec.Data === null ? undefined : Buffer.from(spec.Data, 'base64');
      const stored = kind === 'secrets'
        ? ((cur as Secret).Sealed ? dataKeyFor(store).open((cur as Secret).Sealed!, cur.ID) : Buffer.alloc(0))
        : Buffer.from((cur as Config).Spec.Data ?? '', 'base64');
      const dataChanged = sent !== undefined && !sent.equals(stored);
      if (spec.Name !== cur.Spec.Name || dataChanged) throw badSpec('only updates to Labels are allowed');
      const next = structuredClone(cur) as Secret & Config;
      next.Spec.Labels = { ...(spec.Labels ?? {}) };
      tx.update(kind, next as never, version);
    });
  } catch (err) {
    throw fromStore(err);
  }
}

/** services whose task template refers to this secret or config */
export function usersOf(view: ReadView, kind: FileKind, id: string): Service[] {
  return view.list('services', (s) => {
    const cs = s.Spec.TaskTemplate.ContainerSpec;
    return kind === 'secrets' ? !!cs.Secrets?.some((r) => r.SecretID === id) : !!cs.Configs?.some((r) => r.ConfigID === id);
  });
}

export async function removeFile(store: Store, kind: FileKind, input: string): Promise<void> {
  await store.update((tx) => {
    const cur = resolveFile(tx, kind, input);
    const users = usersOf(tx, kind, cur.ID).map((s) => s.Spec.Name).sort();
    if (users.length) {
      throw badSpec(`${WORD[kind]} '${cur.Spec.Name}' is in use by the following service${users.length > 1 ? 's' : ''}: ${users.join(', ')}`);
    }
    tx.remove(kind, cur.ID);
  });
}
