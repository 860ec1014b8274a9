// Owns encryption at rest for secret data: AES-256-GCM under a 32-byte data
// key kept in its own file (<stateDir>/secrets/data.key, mode 0600), apart
// from the store, so a copy of the store alone reveals nothing. Each sealed
// value is bound to its secret's ID (additional authenticated data), so
// sealed blobs cannot be swapped between secrets.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync, fsyncSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ShoalError, unavailable } from '../../common/errors.js';

const VERSION = 'v1';

export class DataKey {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new ShoalError('internal', 'the secret data key must be 32 bytes');
  }

  /** `v1:` + base64(iv 12 | tag 16 | ciphertext) */
  seal(plain: Buffer, id: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(id));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return `${VERSION}:${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
  }

  open(sealed: string, id: string): Buffer {
    if (!sealed.startsWith(`${VERSION}:`)) throw new ShoalError('internal', 'unknown sealed secret format');
    const raw = Buffer.from(sealed.slice(VERSION.length + 1), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    d.setAAD(Buffer.from(id));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
  }
}

export function keyPath(stateDir: string): string {
  return join(stateDir, 'secrets', 'data.key');
}

/** reads the manager's data key, creating it (exclusively, fsynced) on first use */
export function loadOrCreateKey(stateDir: string): DataKey {
  const p = keyPath(stateDir);
  if (!existsSync(p)) {
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    try {
      const fd = openSync(p, 'wx', 0o600);
      try { writeSync(fd, randomBytes(32)); fsyncSync(fd); } finally { closeSync(fd); }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return new DataKey(readFileSync(p));
}

const keys = new WeakMap<object, DataKey>();
/** the key of the manager this process runs: views of its store (fenced, guarded) share it */
let current: DataKey | undefined;

/** wiring: the manager tells which state directory holds the key for this store */
export function configureDataKey(store: object, stateDir: string): DataKey {
  const k = loadOrCreateKey(stateDir);
  keys.set(store, k);
  current = k;
  return k;
}

/**
 * the data key for this store: as configured (or the running manager's, for
 * a view of its store), else (embedded store) the key file beside the
 * store's folder under the same state directory
 */
export function dataKeyFor(store: object): DataKey {
  let k = keys.get(store) ?? current;
  if (k) return k;
  const dir = (store as { dir?: unknown }).dir;
  const stateDir = typeof dir === 'string' && dir.endsWith('/store') ? dirname(dir) : process.env.SHOAL_STATE_DIR;
  if (!stateDir) throw unavailable('secrets are unavailable: the manager has no data key configured');
  k = loadOrCreateKey(stateDir);
  keys.set(store, k);
  return k;
}
