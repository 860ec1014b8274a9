// Unit tests for lb/backends.ts: address parsing, round robin over healthy
// backends, passive-health penalties, and state kept across updates.
import test from 'ava';
import { BackendPool, parseBackendAddr } from '../../lb/backends.js';

const hosts = (bs: readonly { host: string }[]) => bs.map((b) => b.host);

test('parseBackendAddr', (t) => {
  t.deepEqual(parseBackendAddr('10.0.0.5', 80), { host: '10.0.0.5', port: 80 });
  t.deepEqual(parseBackendAddr('10.0.0.5:8081', 80), { host: '10.0.0.5', port: 8081 });
  t.deepEqual(parseBackendAddr('fd00::5', 80), { host: 'fd00::5', port: 80 });
  t.deepEqual(parseBackendAddr('[fd00::5]:81', 80), { host: 'fd00::5', port: 81 });
  t.deepEqual(parseBackendAddr('[fd00::5]', 80), { host: 'fd00::5', port: 80 });
  t.deepEqual(parseBackendAddr('web.local', 80), { host: 'web.local', port: 80 });
});

test('round robin over healthy backends only', (t) => {
  const p = new BackendPool();
  p.update(
    [
      { addr: 'a', healthy: true },
      { addr: 'b', healthy: false },
      { addr: 'c', healthy: true },
      { addr: 'd', healthy: true },
    ],
    80,
  );
  t.is(p.size, 3);
  const seq = Array.from({ length: 6 }, () => p.pick()!.host);
  t.deepEqual(seq, ['a', 'c', 'd', 'a', 'c', 'd']);
});

test('empty pool picks nothing', (t) => {
  const p = new BackendPool();
  t.is(p.pick(), undefined);
  p.update([{ addr: 'a', healthy: false }], 80);
  t.is(p.pick(), undefined);
});

test('exclude skips tried backends; all tried → undefined', (t) => {
  const p = new BackendPool();
  p.update([{ addr: 'a', healthy: true }, { addr: 'b', healthy: true }], 80);
  const a = p.pick()!;
  const b = p.pick([a])!;
  t.is(b.host, 'b');
  t.is(p.pick([a, b]), undefined);
});

test('a failed backend is skipped until its penalty ends, penalty doubles, success resets', (t) => {
  let now = 1000;
  const p = new BackendPool(100, 4, () => now);
  p.update([{ addr: 'a', healthy: true }, { addr: 'b', healthy: true }, { addr: 'c', healthy: true }], 80);
  const [a] = p.backends();
  p.failed(a);
  t.deepEqual(Array.from({ length: 4 }, () => p.pick()!.host), ['b', 'c', 'b', 'c']);
  now += 100;
  t.true(hosts(Array.from({ length: 3 }, () => p.pick()!)).includes('a'));
  p.failed(a); // second failure: 200 ms
  now += 150;
  t.false(hosts(Array.from({ length: 6 }, () => p.pick()!)).includes('a'));
  p.failed(a);
  p.failed(a);
  p.failed(a); // capped at 4x
  t.is(a.badUntil, now + 400);
  p.succeeded(a);
  t.is(a.badUntil, 0);
  t.is(a.fails, 0);
});

test('when every backend is penalised, the one that recovers first is still tried', (t) => {
  let now = 0;
  const p = new BackendPool(100, 16, () => now);
  p.update([{ addr: 'a', healthy: true }, { addr: 'b', healthy: true }], 80);
  const [a, b] = p.backends();
  p.failed(a);
  p.failed(a); // a: until 200
  p.failed(b); // b: until 100
  t.is(p.pick()!.host, 'b');
  t.is(p.pick([b])!.host, 'a');
});

test('update keeps state of surviving backends and drops removed ones', (t) => {
  const p = new BackendPool();
  p.update([{ addr: 'a', healthy: true }, { addr: 'b:81', healthy: true }], 80);
  const [a] = p.backends();
  p.failed(a);
  p.update([{ addr: 'a', healthy: true }, { addr: 'c', healthy: true }, { addr: 'c', healthy: true }], 80);
  t.is(p.size, 2);
  t.is(p.backends()[0], a);
  t.true(a.badUntil > 0);
  t.deepEqual(hosts(p.backends()), ['a', 'c']);
  // target port change makes a new backend
  p.update([{ addr: 'a', healthy: true }], 81);
  t.not(p.backends()[0], a);
  t.is(p.backends()[0].port, 81);
});
