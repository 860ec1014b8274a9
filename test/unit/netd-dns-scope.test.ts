// ServiceRecords with ownSingleLabels (as netd runs it): an unknown single-label
// name or tasks.LABEL asked from an overlay is NXDOMAIN, never forwarded, so a
// service on another network stays invisible; dotted names still go upstream.
import test from 'ava';
import { ServiceRecords } from '../../netd/dns/index.js';

const recs = () => {
  const r = new ServiceRecords({ ownSingleLabels: true });
  r.setNetworkRecords('front', { subnet: '10.0.1.0/24', name: 'front', services: [{ name: 'web', vip: '10.0.1.2', taskAddrs: ['10.0.1.3'], endpointMode: 'vip' }], tasks: [] });
  r.setNetworkRecords('back', { subnet: '10.0.2.0/24', name: 'back', services: [{ name: 'db', vip: '10.0.2.2', taskAddrs: ['10.0.2.3'], endpointMode: 'vip' }], tasks: [] });
  return r;
};

test('a service of another network is NXDOMAIN, by name and tasks.NAME', (t) => {
  const r = recs();
  t.is(r.lookup('db', '10.0.1.9'), 'nxdomain');
  t.is(r.lookup('tasks.db', '10.0.1.9'), 'nxdomain');
  t.deepEqual(r.lookup('db', '10.0.2.9'), { addrs: ['10.0.2.2'], ttl: 1 });
});

test('dotted names are still forwarded; clients outside every overlay see nothing of ours', (t) => {
  const r = recs();
  t.is(r.lookup('example.org', '10.0.1.9'), undefined);
  t.is(r.lookup('db.back', '10.0.1.9'), undefined);
  t.is(r.lookup('tasks.db.back', '10.0.1.9'), undefined);
  t.is(r.lookup('db', '192.168.1.1'), undefined);
  t.is(r.lookup('nope.front', '10.0.1.9'), 'nxdomain');
});
