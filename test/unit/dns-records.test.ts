// Unit tests of ServiceRecords: service/VIP, dnsrr, tasks., task names,
// aliases, PTR, case and trailing dot, scoping by client subnet, NXDOMAIN in
// a network's zone, replacement and removal of a network's records.
import test from 'ava';
import { ServiceRecords, type NetworkRecords } from '../../netd/dns/index.js';

const front: NetworkRecords = {
  subnet: '10.0.1.0/24',
  name: 'front',
  services: [
    { name: 'web', vip: '10.0.1.2', taskAddrs: ['10.0.1.3', '10.0.1.4', '10.0.1.5'], endpointMode: 'vip', aliases: ['www'] },
    { name: 'rr', taskAddrs: ['10.0.1.6', '10.0.1.7'], endpointMode: 'dnsrr' },
    { name: 'empty', vip: '10.0.1.8', taskAddrs: [], endpointMode: 'vip' },
  ],
  tasks: [
    { name: 'web.1.aaaa', addr: '10.0.1.3' },
    { name: 'web.2.bbbb', addr: '10.0.1.4' },
    { name: 'web.3.cccc', addr: '10.0.1.5' },
    { name: 'rr.1.dddd', addr: '10.0.1.6' },
    { name: 'rr.2.eeee', addr: '10.0.1.7' },
  ],
};
const back: NetworkRecords = {
  subnet: '10.0.2.0/24',
  name: 'back',
  services: [{ name: 'db', vip: '10.0.2.2', taskAddrs: ['10.0.2.3'], endpointMode: 'vip' }],
  tasks: [{ name: 'db.1.ffff', addr: '10.0.2.3' }],
};
const C1 = '10.0.1.50'; // a client on front
const C2 = '10.0.2.50'; // a client on back

function make(): ServiceRecords {
  const r = new ServiceRecords();
  r.setNetworkRecords('n-front', front);
  r.setNetworkRecords('n-back', back);
  return r;
}
const addrs = (r: ReturnType<ServiceRecords['lookup']>) => (r && r !== 'nxdomain' ? [...r.addrs].sort() : r);

test('service name answers its VIP; aliases and NAME.NETWORK too', (t) => {
  const r = make();
  t.deepEqual(addrs(r.lookup('web', C1)), ['10.0.1.2']);
  t.deepEqual(addrs(r.lookup('www', C1)), ['10.0.1.2']);
  t.deepEqual(addrs(r.lookup('web.front', C1)), ['10.0.1.2']);
  t.deepEqual(addrs(r.lookup('empty', C1)), ['10.0.1.8']);
});

test('tasks.SERVICE answers every task address; dnsrr service answers task addresses', (t) => {
  const r = make();
  t.deepEqual(addrs(r.lookup('tasks.web', C1)), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
  t.deepEqual(addrs(r.lookup('tasks.www', C1)), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
  t.deepEqual(addrs(r.lookup('rr', C1)), ['10.0.1.6', '10.0.1.7']);
  t.deepEqual(addrs(r.lookup('tasks.rr', C1)), ['10.0.1.6', '10.0.1.7']);
  t.deepEqual(addrs(r.lookup('tasks.empty', C1)), [], 'a service without running tasks: NOERROR, no answers');
});

test('dnsrr answers are shuffled (every order shows up eventually)', (t) => {
  const r = make();
  const firsts = new Set<string>();
  for (let i = 0; i < 200 && firsts.size < 2; i++) {
    const a = r.lookup('rr', C1);
    if (a && a !== 'nxdomain') firsts.add(a.addrs[0]!);
  }
  t.is(firsts.size, 2);
});

test('task names resolve; PTR for task addresses and VIPs', (t) => {
  const r = make();
  t.deepEqual(addrs(r.lookup('web.2.bbbb', C1)), ['10.0.1.4']);
  t.deepEqual(addrs(r.lookup('web.2.bbbb.front', C1)), ['10.0.1.4']);
  t.deepEqual(r.reverse('10.0.1.4', C1), ['web.2.bbbb.front']);
  t.deepEqual(r.reverse('10.0.1.2', C1), ['web.front']);
  t.is(r.reverse('10.0.1.99', C1), undefined);
});

test('names are case-insensitive and accept a trailing dot', (t) => {
  const r = make();
  t.deepEqual(addrs(r.lookup('WEB.', C1)), ['10.0.1.2']);
  t.deepEqual(addrs(r.lookup('Tasks.Web.Front.', C1)), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
  const mixed = new ServiceRecords();
  mixed.setNetworkRecords('x', { subnet: '10.9.0.0/16', name: 'Net', services: [{ name: 'MyApp', vip: '10.9.0.2', taskAddrs: [], endpointMode: 'vip' }], tasks: [] });
  t.deepEqual(addrs(mixed.lookup('myapp.net', '10.9.3.4')), ['10.9.0.2']);
});

test('names are scoped to the client network', (t) => {
  const r = make();
  t.is(r.lookup('web', C2), undefined, 'web is not on back: forward');
  t.deepEqual(addrs(r.lookup('db', C2)), ['10.0.2.2']);
  t.is(r.lookup('db', C1), undefined);
  t.is(r.lookup('web', '192.168.7.7'), undefined, 'a client on no overlay sees nothing');
  t.is(r.reverse('10.0.2.3', C1), undefined);
  t.deepEqual(r.reverse('10.0.2.3', C2), ['db.1.ffff.back']);
  t.deepEqual(addrs(r.lookup('web', `::ffff:${C1}`)), ['10.0.1.2'], 'IPv4-mapped client address');
  t.is(r.networkOf(C1), 'n-front');
  t.is(r.networkOf('garbage'), undefined);
});

test('unknown names under the client network name are NXDOMAIN, other unknown names are forwarded', (t) => {
  const r = make();
  t.is(r.lookup('nope.front', C1), 'nxdomain');
  t.is(r.lookup('nope', C1), undefined);
  t.is(r.lookup('example.org', C1), undefined);
  t.is(r.lookup('db.back', C1), undefined, 'another network zone is not ours for this client');
});

test('setNetworkRecords replaces a network; removeNetwork forgets it; input is copied', (t) => {
  const r = make();
  const recs: NetworkRecords = structuredClone(front);
  recs.services[0]!.taskAddrs = ['10.0.1.3'];
  r.setNetworkRecords('n-front', recs);
  recs.services[0]!.taskAddrs.push('10.0.1.77'); // later mutation of the caller's object has no effect
  t.deepEqual(addrs(r.lookup('tasks.web', C1)), ['10.0.1.3']);
  r.removeNetwork('n-front');
  t.is(r.lookup('web', C1), undefined);
  t.deepEqual(r.networkIds(), ['n-back']);
  t.throws(() => r.setNetworkRecords('bad', { subnet: 'not-a-cidr', services: [], tasks: [] }));
});

test('without a network name there is no NXDOMAIN zone and no NAME.NETWORK', (t) => {
  const r = new ServiceRecords({ ttl: 7 });
  r.setNetworkRecords('n', { subnet: '10.5.0.0/16', services: [{ name: 'api', vip: '10.5.0.2', taskAddrs: ['10.5.0.3'], endpointMode: 'vip' }], tasks: [{ name: 'api.1.x', addr: '10.5.0.3' }] });
  const a = r.lookup('api', '10.5.9.9');
  t.deepEqual(a, { addrs: ['10.5.0.2'], ttl: 7 });
  t.is(r.lookup('nope.api', '10.5.9.9'), undefined);
  t.deepEqual(r.reverse('10.5.0.3', '10.5.9.9'), ['api.1.x']);
});

test('addresses that are not IPv4 are ignored', (t) => {
  const r = new ServiceRecords();
  r.setNetworkRecords('n', {
    subnet: '10.6.0.0/16',
    services: [{ name: 'x', vip: 'fe80::1', taskAddrs: ['10.6.0.3', 'bogus'], endpointMode: 'vip' }],
    tasks: [{ name: 'x.1.a', addr: 'nope' }],
  });
  t.deepEqual(addrs(r.lookup('x', '10.6.1.1')), ['10.6.0.3']);
  t.is(r.lookup('x.1.a', '10.6.1.1'), undefined);
});
