// Unit tests for netd/ipam: subnet carving, validation, address allocation, MACs, VNIs, JSON state.
import test from 'ava';
import { ShoalError } from '../../agent/common/errors.js';
import { Ipam, VniAllocator, macFromIPv4 } from '../../netd/ipam/index.js';

const code = (e: unknown) => (e instanceof ShoalError ? e.code : 'not-a-shoal-error');

test('carves /24s from 10.0.0.0/8 in order, skipping used and reserved subnets', (t) => {
  const ipam = new Ipam(undefined, { reserved: ['10.0.2.0/23'] });
  t.deepEqual(ipam.allocateSubnet('ingress'), { subnet: '10.0.0.0/24', gateway: '10.0.0.1' });
  t.deepEqual(ipam.allocateSubnet('a', { subnet: '10.0.1.0/24' }), { subnet: '10.0.1.0/24', gateway: '10.0.1.1' });
  t.is(ipam.allocateSubnet('b').subnet, '10.0.4.0/24');
  ipam.allocateSubnet('wide', { subnet: '10.0.8.0/22' });
  t.is(ipam.allocateSubnet('c').subnet, '10.0.5.0/24');
  t.is(ipam.allocateSubnet('d').subnet, '10.0.6.0/24');
  t.is(ipam.allocateSubnet('e').subnet, '10.0.7.0/24');
  t.is(ipam.allocateSubnet('f').subnet, '10.0.12.0/24'); // jumps past the /22
  ipam.releaseSubnet('ingress');
  t.is(ipam.allocateSubnet('g').subnet, '10.0.0.0/24');
});

test('small pools run out with a clear conflict error', (t) => {
  const ipam = new Ipam(undefined, { pools: ['192.168.0.0/23'], subnetSize: 24 });
  ipam.allocateSubnet('a');
  ipam.allocateSubnet('b');
  const e = t.throws(() => ipam.allocateSubnet('c'));
  t.is(code(e), 'conflict');
  t.regex(e!.message, /non-overlapping/);
});

test('rejects host bits, bad CIDRs, overlaps and bad gateways with clear errors', (t) => {
  const ipam = new Ipam(undefined, { reserved: ['10.231.0.0/24'] });
  ipam.allocateSubnet('a', { subnet: '10.9.0.0/16' });
  let e = t.throws(() => ipam.allocateSubnet('x', { subnet: '10.9.3.0/24' }));
  t.is(code(e), 'invalid');
  t.regex(e!.message, /overlaps with subnet 10\.9\.0\.0\/16 of network a/);
  e = t.throws(() => ipam.allocateSubnet('x', { subnet: '10.231.0.0/16' }));
  t.regex(e!.message, /overlaps with reserved subnet 10\.231\.0\.0\/24/);
  e = t.throws(() => ipam.allocateSubnet('x', { subnet: '192.168.1.5/24' }));
  t.regex(e!.message, /host bits.*192\.168\.1\.0\/24/);
  t.is(code(t.throws(() => ipam.allocateSubnet('x', { subnet: 'banana' }))), 'invalid');
  t.is(code(t.throws(() => ipam.allocateSubnet('x', { subnet: '10.1.0.0/33' }))), 'invalid');
  t.is(code(t.throws(() => ipam.allocateSubnet('x', { subnet: '192.168.0.0/24', gateway: '192.168.1.1' }))), 'invalid');
  t.is(code(t.throws(() => ipam.allocateSubnet('x', { subnet: '192.168.0.0/24', gateway: '192.168.0.255' }))), 'invalid');
  t.is(code(t.throws(() => ipam.allocateSubnet('x', { gateway: '10.0.0.1' }))), 'invalid');
  t.is(code(t.throws(() => ipam.allocateSubnet('x', { subnet: '192.168.0.0/24', range: '192.168.1.0/25' }))), 'invalid');
  // nothing was recorded by the failed attempts
  t.deepEqual(Object.keys(ipam.toJSON().networks), ['a']);
});

test('user subnet and gateway are honoured; allocateSubnet is idempotent', (t) => {
  const ipam = new Ipam();
  const lease = ipam.allocateSubnet('n', { subnet: '172.28.0.0/16', gateway: '172.28.5.254' });
  t.deepEqual(lease, { subnet: '172.28.0.0/16', gateway: '172.28.5.254' });
  t.deepEqual(ipam.allocateSubnet('n'), lease);
  t.is(ipam.allocateAddress('n'), '172.28.0.1'); // .1 is free when the gateway is elsewhere
});

test('addresses: gateway, network and broadcast excluded; serial; exhaustion; release', (t) => {
  const ipam = new Ipam();
  ipam.allocateSubnet('n', { subnet: '192.168.7.0/29' }); // .0 net, .1 gw, .7 broadcast
  const got = [1, 2, 3, 4, 5].map(() => ipam.allocateAddress('n'));
  t.deepEqual(got, ['192.168.7.2', '192.168.7.3', '192.168.7.4', '192.168.7.5', '192.168.7.6']);
  const e = t.throws(() => ipam.allocateAddress('n'));
  t.is(code(e), 'conflict');
  ipam.releaseAddress('n', '192.168.7.3/29');
  ipam.releaseAddress('n', '192.168.7.5');
  t.is(ipam.allocateAddress('n'), '192.168.7.3'); // wraps around after the last one given
  t.is(ipam.allocateAddress('n'), '192.168.7.5');
  t.is(ipam.cidrOf('n', '192.168.7.5'), '192.168.7.5/29');
});

test('freed addresses are not reused at once', (t) => {
  const ipam = new Ipam();
  ipam.allocateSubnet('n');
  const a = ipam.allocateAddress('n');
  ipam.releaseAddress('n', a);
  t.not(ipam.allocateAddress('n'), a);
});

test('requested addresses and ranges', (t) => {
  const ipam = new Ipam();
  ipam.allocateSubnet('n', { subnet: '10.5.0.0/24', range: '10.5.0.128/30' });
  t.is(ipam.allocateAddress('n', '10.5.0.9'), '10.5.0.9');
  t.is(code(t.throws(() => ipam.allocateAddress('n', '10.5.0.9'))), 'conflict');
  t.is(code(t.throws(() => ipam.allocateAddress('n', '10.5.0.1'))), 'invalid');
  t.is(code(t.throws(() => ipam.allocateAddress('n', '10.5.0.255'))), 'invalid');
  t.is(code(t.throws(() => ipam.allocateAddress('n', '10.6.0.3'))), 'invalid');
  t.deepEqual([1, 2, 3, 4].map(() => ipam.allocateAddress('n')), ['10.5.0.128', '10.5.0.129', '10.5.0.130', '10.5.0.131']);
  t.is(code(t.throws(() => ipam.allocateAddress('n'))), 'conflict');
  t.is(code(t.throws(() => ipam.allocateAddress('nope'))), 'not-found');
});

test('state round-trips through JSON', (t) => {
  const a = new Ipam();
  a.allocateSubnet('x');
  a.allocateSubnet('y', { subnet: '10.7.0.0/24', gateway: '10.7.0.254' });
  a.allocateAddress('x');
  const last = a.allocateAddress('x');
  a.allocateAddress('y', '10.7.0.10');
  const json = JSON.parse(JSON.stringify(a.toJSON()));
  const b = new Ipam(json);
  t.deepEqual(b.toJSON(), a.toJSON());
  t.is(b.allocateSubnet('z').subnet, '10.0.1.0/24');
  t.is(a.allocateAddress('x'), b.allocateAddress('x'));
  t.not(b.allocateAddress('x'), last);
  t.is(code(t.throws(() => b.allocateAddress('y', '10.7.0.10'))), 'conflict');
  releaseAll(b);
  t.deepEqual(b.toJSON(), { networks: {} });
});

function releaseAll(ipam: Ipam) {
  for (const id of Object.keys(ipam.toJSON().networks)) ipam.releaseSubnet(id);
}

test('MAC from IPv4 as Docker makes it', (t) => {
  t.is(macFromIPv4('10.0.1.3'), '02:42:0a:00:01:03');
  t.is(macFromIPv4('192.168.255.254'), '02:42:c0:a8:ff:fe');
  t.throws(() => macFromIPv4('10.0.1'));
});

test('VNIs from 4096, lowest free, JSON state, conflicts', (t) => {
  const v = new VniAllocator();
  t.is(v.allocate('ingress'), 4096);
  t.is(v.allocate('a'), 4097);
  t.is(v.allocate('a'), 4097);
  t.is(v.allocate('b', 5000), 5000);
  t.is(code(t.throws(() => v.allocate('c', 5000))), 'conflict');
  v.release('ingress');
  const w = new VniAllocator(JSON.parse(JSON.stringify(v.toJSON())));
  t.is(w.allocate('c'), 4096);
  t.is(w.get('b'), 5000);
});
