import test from 'ava';
import { Sim, simNode } from '../helpers/cluster-sim.js';
import { newId } from '../../agent/common/ids.js';
import { vniOf } from '../../agent/manager/allocator/networks.js';
import type { Network } from '../../agent/common/types.js';
import ipaddr from 'ipaddr.js';

function network(name: string, extra: Partial<Network['Spec']> = {}): Network {
  return { ID: newId(), Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '', Spec: { Name: name, DriverConfiguration: { Name: 'overlay' }, ...extra } };
}

test('networks get VNIs and subnets; tasks, VIPs and nodes get addresses inside them; finished tasks give theirs back', async (t) => {
  const sim = new Sim();
  const a = simNode('a'), b = simNode('b');
  await sim.start([a, b]);
  t.teardown(() => sim.stop());
  const ingress = network('ingress', { Ingress: true });
  const front = network('front');
  const fixed = network('fixed', { IPAMOptions: { Configs: [{ Subnet: '10.77.0.0/28' }] } });
  await sim.store.update((tx) => { tx.create('networks', ingress); tx.create('networks', front); tx.create('networks', fixed); });
  await sim.until('allocated', () => sim.store.list('networks').every((n) => vniOf(n) !== undefined));
  const nets = Object.fromEntries(sim.store.list('networks').map((n) => [n.Spec.Name, n]));
  // the first free /24 of 10.0.0.0/8 (subnets of this host's interfaces are skipped)
  t.regex(nets.ingress.IPAMOptions!.Configs[0].Subnet, /^10\.\d+\.\d+\.0\/24$/);
  t.is(nets.fixed.IPAMOptions!.Configs[0].Subnet, '10.77.0.0/28');
  t.is(new Set(sim.store.list('networks').map(vniOf)).size, 3, 'distinct VNIs');

  const svc = await sim.createService({
    Name: 'web', Mode: { Replicated: { Replicas: 3 } },
    TaskTemplate: { ContainerSpec: { Image: 'img:1' }, Networks: [{ Target: front.ID }] },
    EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080 }] },
  });
  await sim.store.update((tx) => { const s = tx.get('services', svc.ID)!; tx.update('services', { ...s, Endpoint: { ...s.Endpoint, Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }] } }); });
  await sim.until('3 running', () => sim.running(svc.ID).length === 3);
  const s = sim.store.get('services', svc.ID)!;
  t.deepEqual(s.Endpoint.VirtualIPs!.map((v) => v.NetworkID).sort(), [front.ID, ingress.ID].sort());
  const frontSubnet = ipaddr.parseCIDR(nets.front.IPAMOptions!.Configs[0].Subnet);
  const seen = new Set<string>();
  for (const task of sim.running(svc.ID)) {
    t.is(task.NetworksAttachments!.length, 2);
    for (const att of task.NetworksAttachments!) {
      const [ip] = ipaddr.parseCIDR(att.Addresses[0]);
      seen.add(ip.toString());
      if (att.Network.ID === front.ID) t.true(ip.match(frontSubnet));
    }
  }
  t.is(seen.size, 6, 'no address handed out twice');
  await sim.until('nodes attached', () => sim.store.list('nodes').every((n) => (n.Attachments ?? []).some((x) => x.NetworkID === ingress.ID)));
  const withTasks = new Set(sim.running(svc.ID).map((x) => x.NodeID));
  await sim.until('nodes with tasks attached to front', () => [...withTasks].every((id) => sim.store.get('nodes', id!)!.Attachments!.some((x) => x.NetworkID === front.ID)));

  // a /28 holds 13 addresses: scaling 3 tasks down and up 6 times only works if finished tasks give theirs back
  const small = await sim.createService({ Name: 'small', Mode: { Replicated: { Replicas: 3 } }, EndpointSpec: { Mode: 'dnsrr' }, TaskTemplate: { ContainerSpec: { Image: 'img:1' }, Networks: [{ Target: fixed.ID }] } });
  for (let i = 0; i < 6; i++) {
    await sim.until(`3 running (round ${i})`, () => sim.running(small.ID).length === 3);
    await sim.updateService(small.ID, (x) => { x.Spec.Mode = { Replicated: { Replicas: 0 } }; });
    await sim.until('none', () => sim.tasks(small.ID).length === 0);
    await sim.updateService(small.ID, (x) => { x.Spec.Mode = { Replicated: { Replicas: 3 } }; });
  }
  await sim.until('3 running at the end', () => sim.running(small.ID).length === 3);
  t.true(sim.running(small.ID).every((x) => x.NetworksAttachments![0].Addresses[0].startsWith('10.77.0.')));
});
