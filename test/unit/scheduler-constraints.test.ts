import test from 'ava';
import { ConstraintError, matchConstraints, nodeAttribute, parseConstraints } from '../../agent/manager/scheduler/constraints.js';
import { makeNode } from '../../agent/manager/scheduler/fixtures.js';

test('parses == and != with surrounding spaces', (t) => {
  t.deepEqual(parseConstraints(['node.role==manager', ' node.labels.zone != eu-1 ']), [
    { key: 'node.role', op: '==', value: 'manager' },
    { key: 'node.labels.zone', op: '!=', value: 'eu-1' },
  ]);
  t.deepEqual(parseConstraints(undefined), []);
  t.deepEqual(parseConstraints([]), []);
});

test('rejects expressions as Swarm does', (t) => {
  const msg = (e: string) => t.throws(() => parseConstraints([e]), { instanceOf: ConstraintError })?.message;
  t.is(msg('node.role=manager'), 'constraint expected one operator from ==, !=');
  t.is(msg('node.role'), 'constraint expected one operator from ==, !=');
  t.is(msg('==manager'), "key '' is invalid");
  t.is(msg('no de==x'), "key 'no de' is invalid");
  t.is(msg('node.role=='), "value '' is invalid");
  t.is(msg('node.role==a<b'), "value 'a<b' is invalid");
  // the first bad one fails the whole list
  t.throws(() => parseConstraints(['node.role==manager', 'bad']), { instanceOf: ConstraintError });
});

const node = makeNode({
  id: 'n1abc', hostname: 'Alpha', role: 'manager', labels: { zone: 'eu-1', Disk: 'ssd' },
  engineLabels: { storage: 'fast' }, os: 'linux', arch: 'x86_64', addr: '192.168.5.10',
});
const ok = (...exprs: string[]) => matchConstraints(parseConstraints(exprs), node);

test('node.id, node.hostname, node.role', (t) => {
  t.true(ok('node.id==n1abc'));
  t.false(ok('node.id==n1'));
  t.true(ok('node.hostname==alpha'), 'values compare case-insensitively');
  t.true(ok('node.hostname!=beta'));
  t.true(ok('node.role==manager'));
  t.false(ok('node.role==worker'));
  t.true(ok('NODE.ROLE==manager'), 'keys compare case-insensitively');
});

test('node.platform.os and node.platform.arch', (t) => {
  t.true(ok('node.platform.os==linux'));
  t.false(ok('node.platform.os==windows'));
  t.true(ok('node.platform.arch==x86_64'));
  t.true(ok('node.platform.arch!=aarch64'));
});

test('node.labels and engine.labels; a missing label is the empty value', (t) => {
  t.true(ok('node.labels.zone==eu-1'));
  t.false(ok('node.labels.zone==us-1'));
  t.true(ok('node.labels.Disk==SSD'));
  t.false(ok('node.labels.disk==ssd'), 'label names are case sensitive');
  t.true(ok('node.labels.missing!=x'));
  t.false(ok('node.labels.missing==x'));
  t.true(ok('engine.labels.storage==fast'));
  t.false(ok('engine.labels.storage!=fast'));
  t.is(nodeAttribute(node, 'node.labels.missing'), '');
});

test('node.ip matches an address or a CIDR', (t) => {
  t.true(ok('node.ip==192.168.5.10'));
  t.true(ok('node.ip==192.168.5.0/24'));
  t.false(ok('node.ip==10.0.0.0/8'));
  t.true(ok('node.ip!=10.0.0.0/8'));
});

test('every constraint must hold; an unknown key matches no node', (t) => {
  t.true(ok('node.role==manager', 'node.labels.zone==eu-1'));
  t.false(ok('node.role==manager', 'node.labels.zone==us-1'));
  t.false(ok('node.colour==blue'));
  t.false(ok('node.colour!=blue'));
  t.is(nodeAttribute(node, 'node.colour'), undefined);
});
