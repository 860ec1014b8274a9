import test from 'ava';
import { mkdtempSync, rmSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../agent/manager/store/memory.js';
import { EmbeddedStore } from '../../agent/manager/store/embedded.js';
import type { Service } from '../../agent/common/types.js';

function svc(id: string, name: string): Service {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: name, TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } }, Mode: { Replicated: { Replicas: 1 } } },
    Endpoint: { Spec: {} },
  };
}

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'shoal-store-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('transactions are atomic and versions advance', async (t) => {
  const s = new MemoryStore();
  await s.update((tx) => { tx.create('services', svc('a', 'web')); tx.create('services', svc('b', 'db')); });
  t.is(s.list('services').length, 2);
  const v = s.get('services', 'a')!.Version.Index;
  await t.throwsAsync(s.update((tx) => {
    tx.create('services', svc('c', 'x'));
    tx.update('services', svc('a', 'web2'), v + 100);
  }), { message: 'update out of sequence' });
  t.is(s.get('services', 'c'), undefined, 'failed transaction wrote nothing');
  await s.update((tx) => tx.update('services', { ...svc('a', 'web2') }, v));
  t.true(s.get('services', 'a')!.Version.Index > v);
  t.is(s.get('services', 'a')!.Spec.Name, 'web2');
  await t.throwsAsync(s.update((tx) => tx.create('services', svc('a', 'dup'))), { message: /already exists/ });
});

test('objects handed out by a transaction are private copies', async (t) => {
  const s = new MemoryStore();
  await s.update((tx) => { tx.create('services', svc('a', 'web')); });
  await t.throwsAsync(s.update((tx) => {
    const o = tx.get('services', 'a')!;
    o.Spec.Name = 'mutated';
    throw new Error('abort');
  }));
  t.is(s.get('services', 'a')!.Spec.Name, 'web');
});

test('watch sees every change in order, task indexes follow', async (t) => {
  const s = new MemoryStore();
  const seen: string[] = [];
  const stop = s.watch((cs) => { for (const c of cs) seen.push(`${c.action}:${c.kind}:${c.object.ID}`); });
  await s.update((tx) => tx.create('services', svc('a', 'web')));
  await s.update((tx) => tx.create('tasks', {
    ID: 't1', Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', ServiceID: 'a', NodeID: 'n1', Spec: svc('a', 'web').Spec.TaskTemplate,
    Status: { State: 'new', Timestamp: '', Message: '' }, DesiredState: 'running',
  }));
  t.deepEqual(s.byIndex('tasks', 'node', 'n1').map((x) => x.ID), ['t1']);
  await s.update((tx) => tx.update('tasks', { ...tx.get('tasks', 't1')!, NodeID: 'n2' }));
  t.deepEqual(s.byIndex('tasks', 'node', 'n1'), []);
  t.deepEqual(s.byIndex('tasks', 'node', 'n2').map((x) => x.ID), ['t1']);
  await s.update((tx) => tx.remove('tasks', 't1'));
  stop();
  await s.update((tx) => tx.remove('services', 'a'));
  t.deepEqual(seen, ['create:services:a', 'create:tasks:t1', 'update:tasks:t1', 'remove:tasks:t1']);
  t.deepEqual(s.byIndex('tasks', 'service', 'a'), []);
});

test('embedded store recovers every acknowledged write and cuts a torn tail', async (t) => {
  const dir = tmp(t);
  let s = await EmbeddedStore.open(dir);
  await Promise.all(Array.from({ length: 50 }, (_, i) => s.update((tx) => tx.create('services', svc(`s${i}`, `svc${i}`)))));
  await s.update((tx) => tx.remove('services', 's3'));
  const rev = s.revision;
  await s.close();
  // a torn record: half a line at the end, as a crash mid-write leaves it
  appendFileSync(join(dir, 'store', 'journal.log'), '0badc0de {"rev":999,"reco');
  s = await EmbeddedStore.open(dir);
  t.is(s.list('services').length, 49);
  t.is(s.revision, rev);
  t.is(s.get('services', 's3'), undefined);
  await s.update((tx) => tx.create('services', svc('new', 'after-recovery')));
  await s.close();
  s = await EmbeddedStore.open(dir);
  t.truthy(s.get('services', 'new'), 'writes after a cut tail are readable');
  t.is(s.list('services').length, 50);
  await s.close();
});

test('embedded store: a corrupt record ends the journal; snapshots load', async (t) => {
  const dir = tmp(t);
  let s = await EmbeddedStore.open(dir);
  for (let i = 0; i < 5; i++) await s.update((tx) => tx.create('services', svc(`s${i}`, `svc${i}`)));
  await s.snapshot();
  await s.update((tx) => tx.create('services', svc('s5', 'svc5')));
  await s.update((tx) => tx.create('services', svc('s6', 'svc6')));
  await s.close();
  const j = join(dir, 'store', 'journal.log');
  const lines = readFileSync(j, 'utf8').split('\n');
  lines[1] = lines[1].replace('svc6', 'svcX'); // checksum no longer matches
  writeFileSync(j, lines.join('\n'));
  s = await EmbeddedStore.open(dir);
  t.deepEqual(s.list('services').map((x) => x.ID).sort(), ['s0', 's1', 's2', 's3', 's4', 's5']);
  await s.close();
});
