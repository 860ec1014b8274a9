// Owns the embedded durable store: the in-memory store plus an append-only
// journal and snapshots under <stateDir>/store. Each committed batch is one
// checksummed journal line, fsynced (group commit) before the write is
// acknowledged; a torn or corrupt tail is cut off at load, so a kill -9 at
// any moment loses no acknowledged write and never leaves an unloadable store.
import { mkdirSync, openSync, readFileSync, writeFileSync, fsyncSync, closeSync, renameSync, existsSync, ftruncateSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { logger } from '../../common/log.js';
import type { Kind, KindMap } from '../../common/types.js';
import { KINDS, MemoryStore, type Record_ } from './memory.js';
import type { Change } from './types.js';

const log = logger('store');
const SNAPSHOT_EVERY = 20_000; // journal records between snapshots

interface Snapshot { revision: number; objects: Partial<Record<Kind, KindMap[Kind][]>> }

export function encodeLine(payload: unknown): string {
  const json = JSON.stringify(payload);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** parses journal text; returns the good records and the byte length of the good prefix */
export function decodeJournal(text: string): { batches: { rev: number; records: Record_[] }[]; goodBytes: number } {
  const batches: { rev: number; records: Record_[] }[] = [];
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break; // torn last line
    const line = text.slice(pos, nl);
    const json = line.slice(9);
    if (line[8] !== ' ' || crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) break;
    try {
      batches.push(JSON.parse(json));
    } catch {
      break;
    }
    pos = nl + 1;
  }
  return { batches, goodBytes: Buffer.byteLength(text.slice(0, pos)) };
}

export class EmbeddedStore extends MemoryStore {
  private dir: string;
  private journal!: FileHandle;
  private queue: { line: string; done: () => void; fail: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private records = 0;
  private closed = false;

  private constructor(stateDir: string) {
    super();
    this.dir = join(stateDir, 'store');
  }

  static async open(stateDir: string): Promise<EmbeddedStore> {
    const s = new EmbeddedStore(stateDir);
    mkdirSync(s.dir, { recursive: true });
    s.load();
    s.journal = await open(join(s.dir, 'journal.log'), 'a');
    return s;
  }

  /** true when a store exists under stateDir */
  static exists(stateDir: string): boolean {
    return existsSync(join(stateDir, 'store', 'snapshot.json')) || existsSync(join(stateDir, 'store', 'journal.log'));
  }

  private load(): void {
    const snapPath = join(this.dir, 'snapshot.json');
    if (existsSync(snapPath)) {
      const snap = JSON.parse(readFileSync(snapPath, 'utf8')) as Snapshot;
      for (const kind of KINDS) for (const o of snap.objects[kind] ?? []) this.rawPut(kind, o);
      this.setRevision(snap.revision);
    }
    const jPath = join(this.dir, 'journal.log');
    if (!existsSync(jPath)) return;
    const text = readFileSync(jPath, 'utf8');
    const { batches, goodBytes } = decodeJournal(text);
    for (const b of batches) {
      if (b.rev <= this.revision) continue; // already in the snapshot
      for (const r of b.records) {
        if (r.action === 'remove') this.rawRemove(r.kind, r.id!);
        else this.rawPut(r.kind, r.object!);
      }
      this.setRevision(b.rev);
    }
    this.records = batches.length;
    if (goodBytes < Buffer.byteLength(text)) {
      log.warn({ dropped: Buffer.byteLength(text) - goodBytes }, 'journal had a torn or corrupt tail; cut it off');
      const fd = openSync(jPath, 'r+');
      ftruncateSync(fd, goodBytes);
      fsyncSync(fd);
      closeSync(fd);
    }
  }

  protected override persist(changes: Change[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    const records: Record_[] = changes.map((c) =>
      c.action === 'remove' ? { kind: c.kind, action: c.action, id: c.object.ID } : { kind: c.kind, action: c.action, object: c.object });
    const line = encodeLine({ rev: changes[changes.length - 1].revision, records });
    return new Promise((done, fail) => {
      this.queue.push({ line, done, fail });
      this.flushing ??= this.flush();
    });
  }

  /** group commit: everything queued goes out in one write and one fsync */
  private async flush(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0);
      try {
        await this.journal.write(batch.map((b) => b.line).join(''));
        await this.journal.datasync();
        this.records += batch.length;
        for (const b of batch) b.done();
      } catch (err) {
        log.error({ err }, 'journal write failed');
        for (const b of batch) b.fail(err);
      }
      if (this.records >= SNAPSHOT_EVERY) await this.snapshot();
    }
    this.flushing = null;
  }

  /** writes a snapshot of the whole state and starts a new journal */
  async snapshot(): Promise<void> {
    const objects: Snapshot['objects'] = {};
    for (const kind of KINDS) objects[kind] = this.list(kind);
    const tmp = join(this.dir, 'snapshot.json.tmp');
    const fd = openSync(tmp, 'w');
    writeFileSync(fd, JSON.stringify({ revision: this.revision, objects } satisfies Snapshot));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(this.dir, 'snapshot.json'));
    const dfd = openSync(this.dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    await this.journal.truncate(0);
    await this.journal.datasync();
    this.records = 0;
  }

  override async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
    await this.journal.close();
    await super.close();
  }
}
