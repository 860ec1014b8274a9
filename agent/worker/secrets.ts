// Owns secrets and configs on a node: the payloads the manager sent for this
// node's tasks (kept in memory only), written per task as files under
// <root>/<nodeId>/<taskId>/ (root: $SHOAL_SECRETS_DIR or /run/shoal/secrets,
// folders 0700) with the reference's uid, gid and mode, and bind-mounted
// read-only at the target (/run/secrets/NAME by default for secrets, /NAME
// for configs). A task's folder goes when the task leaves the node's set.
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import type Dockerode from 'dockerode';
import type { AssignedFiles } from '../common/protocol.js';
import type { FileTarget, Task } from '../common/types.js';

export type FileKind = 'secrets' | 'configs';
type Resolver = (kind: FileKind, id: string) => Buffer | undefined;

const delivered: Record<FileKind, Map<string, Buffer>> = { secrets: new Map(), configs: new Map() };
const resolvers: Resolver[] = [];

export function secretsRoot(): string {
  return process.env.SHOAL_SECRETS_DIR || '/run/shoal/secrets';
}

/** the payloads a manager sent for this node's current tasks (replaces the previous set) */
export function setDeliveredFiles(files: AssignedFiles): void {
  for (const kind of ['secrets', 'configs'] as const) {
    const m = new Map<string, Buffer>();
    for (const f of files[kind] ?? []) m.set(f.id, Buffer.from(f.data, 'base64'));
    delivered[kind] = m;
  }
}

/** a manager in this process can open payloads from its store directly */
export function addFileResolver(r: Resolver): () => void {
  resolvers.push(r);
  return () => { const i = resolvers.indexOf(r); if (i >= 0) resolvers.splice(i, 1); };
}

function payload(kind: FileKind, id: string): Buffer | undefined {
  const d = delivered[kind].get(id);
  if (d) return d;
  for (const r of resolvers) {
    const v = r(kind, id);
    if (v) return v;
  }
  return undefined;
}

function targetPath(kind: FileKind, f: FileTarget | undefined, name: string): string {
  const t = f?.Name || name;
  if (isAbsolute(t)) return t;
  return kind === 'secrets' ? posix.join('/run/secrets', t) : posix.join('/', t);
}

function owner(v: string | undefined): number {
  const n = Number(v ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/**
 * writes the task's secret and config files and returns their read-only bind
 * mounts; throws when a payload did not reach this node
 */
export function taskFileMounts(task: Task, nodeId: string): Dockerode.MountSettings[] {
  const cs = task.Spec.ContainerSpec;
  const refs: { kind: FileKind; id: string; name: string; file?: FileTarget }[] = [
    ...(cs.Secrets ?? []).map((r) => ({ kind: 'secrets' as const, id: r.SecretID, name: r.SecretName, file: r.File })),
    ...(cs.Configs ?? []).filter((r) => r.File).map((r) => ({ kind: 'configs' as const, id: r.ConfigID, name: r.ConfigName, file: r.File })),
  ];
  if (!refs.length) return [];
  const dir = join(secretsRoot(), nodeId, task.ID);
  const mounts: Dockerode.MountSettings[] = [];
  for (const [i, r] of refs.entries()) {
    const data = payload(r.kind, r.id);
    if (!data) throw new Error(`${r.kind === 'secrets' ? 'secret' : 'config'} ${r.name} (${r.id}) is not available on this node`);
    const sub = join(dir, r.kind);
    mkdirSync(sub, { recursive: true, mode: 0o700 });
    // one file per reference: two references to one secret may differ in owner and mode
    const file = join(sub, `${i}-${r.id}`);
    writeFileSync(file, data, { mode: 0o600 });
    chownSync(file, owner(r.file?.UID), owner(r.file?.GID));
    chmodSync(file, r.file?.Mode ?? 0o444);
    mounts.push({ Type: 'bind', Source: file, Target: targetPath(r.kind, r.file, r.name), ReadOnly: true });
  }
  return mounts;
}

/** removes the files of this node's tasks that are not in `keep` */
export function sweepTaskFiles(nodeId: string, keep: Set<string>): void {
  const dir = join(secretsRoot(), nodeId);
  if (!existsSync(dir)) return;
  for (const taskId of readdirSync(dir)) {
    if (!keep.has(taskId)) rmSync(join(dir, taskId), { recursive: true, force: true });
  }
}

/** removes every file of this node (leaving the swarm) */
export function removeNodeFiles(nodeId: string): void {
  rmSync(join(secretsRoot(), nodeId), { recursive: true, force: true });
}

/** removes one task's files */
export function removeTaskFiles(nodeId: string, taskId: string): void {
  if (!nodeId || !taskId || taskId.includes('/') || nodeId.includes('/')) return;
  rmSync(join(secretsRoot(), nodeId, taskId), { recursive: true, force: true });
}
