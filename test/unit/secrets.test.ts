// Secret data at rest: AES-256-GCM sealing bound to the secret's ID, a key
// file created once with mode 0600, and delivery limited to the secrets and
// configs that a node's wanted tasks use.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Task } from '../../agent/common/types.js';
import { DataKey, keyPath, loadOrCreateKey } from '../../agent/manager/secrets/datakey.js';
import { referencedFiles } from '../../agent/manager/secrets/deliver.js';

test('sealed data opens only with the same key and the same secret ID', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-key-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const k = loadOrCreateKey(dir);
  t.is(statSync(keyPath(dir)).mode & 0o777, 0o600);
  const sealed = k.seal(Buffer.from('s3cr3t'), 'id1');
  t.false(sealed.includes('s3cr3t'));
  t.false(sealed.includes(Buffer.from('s3cr3t').toString('base64')));
  t.is(loadOrCreateKey(dir).open(sealed, 'id1').toString(), 's3cr3t', 'the key file is reused');
  t.throws(() => k.open(sealed, 'id2'));
  t.throws(() => new DataKey(Buffer.alloc(32, 1)).open(sealed, 'id1'));
  const raw = Buffer.from(sealed.slice(3), 'base64');
  raw[raw.length - 1]! ^= 1;
  t.throws(() => k.open(`v1:${raw.toString('base64')}`, 'id1'), undefined, 'tampering is detected');
  t.not(k.seal(Buffer.from('s3cr3t'), 'id1'), sealed, 'a fresh IV each time');
});

const task = (id: string, desired: Task['DesiredState'], secrets: string[], configs: string[] = []): Task => ({
  ID: id, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '', ServiceID: 's', DesiredState: desired,
  Status: { Timestamp: '', State: 'running', Message: '' },
  Spec: { ContainerSpec: { Image: 'x', Secrets: secrets.map((s) => ({ SecretID: s, SecretName: s, File: { Name: s } })), Configs: configs.map((c) => ({ ConfigID: c, ConfigName: c, File: { Name: c } })) } },
});

test('a node gets only what its wanted tasks use', (t) => {
  const refs = referencedFiles([task('a', 'running', ['s1'], ['c1']), task('b', 'shutdown', ['s2'], ['c2']), task('c', 'ready', ['s3'])]);
  t.deepEqual([...refs.secrets].sort(), ['s1', 's3']);
  t.deepEqual([...refs.configs], ['c1']);
});
