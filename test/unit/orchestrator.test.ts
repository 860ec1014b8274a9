import test from 'ava';
import { Sim, simNode } from '../helpers/cluster-sim.js';

test('replicated: slots 1..N run, scale down removes the highest slots', async (t) => {
  const sim = new Sim();
  await sim.start([simNode('a'), simNode('b')]);
  t.teardown(() => sim.stop());
  const svc = await sim.createService({ Name: 'web', Mode: { Replicated: { Replicas: 3 } } });
  await sim.until('3 running', () => sim.running(svc.ID).length === 3);
  t.deepEqual(sim.running(svc.ID).map((x) => x.Slot).sort(), [1, 2, 3]);
  await sim.updateService(svc.ID, (s) => { s.Spec.Mode = { Replicated: { Replicas: 1 } }; });
  await sim.until('1 left', () => sim.tasks(svc.ID).length === 1);
  t.is(sim.running(svc.ID)[0].Slot, 1);
  t.is(sim.store.get('services', svc.ID)!.UpdateStatus?.State, 'completed');
});

test('replicated: a dead task is replaced at once, then with backoff; condition none leaves it', async (t) => {
  const sim = new Sim();
  const node = simNode('a');
  await sim.start([node]);
  t.teardown(() => sim.stop());
  const svc = await sim.createService({ Name: 'web' });
  await sim.until('running', () => sim.running(svc.ID).length === 1);
  const first = sim.running(svc.ID)[0];
  await sim.store.update((tx) => tx.update('tasks', { ...tx.get('tasks', first.ID)!, Status: { ...first.Status, State: 'failed' } }));
  await sim.until('replacement running', () => sim.running(svc.ID).some((x) => x.ID !== first.ID));
  const old = sim.store.get('tasks', first.ID)!;
  t.is(old.DesiredState, 'shutdown');
  const none = await sim.createService({ Name: 'once', TaskTemplate: { ContainerSpec: { Image: 'img:1' }, RestartPolicy: { Condition: 'none' } } });
  await sim.until('running', () => sim.running(none.ID).length === 1);
  const only = sim.running(none.ID)[0];
  await sim.store.update((tx) => tx.update('tasks', { ...tx.get('tasks', only.ID)!, Status: { ...only.Status, State: 'complete' } }));
  await sim.orchestrator.settle();
  await new Promise((r) => setTimeout(r, 100));
  t.is(sim.tasks(none.ID).length, 1, 'no restart with condition none');
});

test('replicated: max attempts stop restarts; a drained node moves tasks', async (t) => {
  const sim = new Sim();
  const a = simNode('a'), b = simNode('b');
  await sim.start([a, b]);
  t.teardown(() => sim.stop());
  sim.failImage.add('bad:1');
  const bad = await sim.createService({ Name: 'bad', TaskTemplate: { ContainerSpec: { Image: 'bad:1' }, RestartPolicy: { MaxAttempts: 2, Delay: 0 } } });
  await sim.until('3 failed tasks', () => sim.tasks(bad.ID, (x) => x.Status.State === 'failed').length === 3);
  await new Promise((r) => setTimeout(r, 100));
  t.is(sim.tasks(bad.ID).length, 3, 'first run + 2 restarts');
  const web = await sim.createService({ Name: 'web', Mode: { Replicated: { Replicas: 4 } } });
  await sim.until('4 running', () => sim.running(web.ID).length === 4);
  await sim.store.update((tx) => { const n = tx.get('nodes', a.ID)!; tx.update('nodes', { ...n, Spec: { ...n.Spec, Availability: 'drain' } }); });
  await sim.until('all on b', () => sim.running(web.ID).length === 4 && sim.running(web.ID).every((x) => x.NodeID === b.ID));
  t.pass();
});

test('global: one task per active node, follows node changes', async (t) => {
  const sim = new Sim();
  const a = simNode('a'), b = simNode('b', { Labels: { zone: 'x' } });
  await sim.start([a, b]);
  t.teardown(() => sim.stop());
  const g = await sim.createService({ Name: 'g', Mode: { Global: {} } });
  await sim.until('2 running', () => sim.running(g.ID).length === 2);
  const c = simNode('c');
  await sim.store.update((tx) => tx.create('nodes', c));
  await sim.until('3 running', () => sim.running(g.ID).length === 3);
  await sim.store.update((tx) => { const n = tx.get('nodes', a.ID)!; tx.update('nodes', { ...n, Spec: { ...n.Spec, Availability: 'drain' } }); });
  await sim.until('2 running, none on a', () => sim.running(g.ID).length === 2 && !sim.running(g.ID).some((x) => x.NodeID === a.ID));
  const z = await sim.createService({ Name: 'z', Mode: { Global: {} }, TaskTemplate: { ContainerSpec: { Image: 'img:1' }, Placement: { Constraints: ['node.labels.zone==x'] } } });
  await sim.until('1 running on b', () => sim.running(z.ID).length === 1 && sim.running(z.ID)[0].NodeID === b.ID);
  t.pass();
});

test('rolling update: parallelism bounds tasks in flight, completes; failure pauses', async (t) => {
  const sim = new Sim();
  await sim.start([simNode('a'), simNode('b')]);
  t.teardown(() => sim.stop());
  const svc = await sim.createService({ Name: 'web', Mode: { Replicated: { Replicas: 4 } } });
  await sim.until('4 running', () => sim.running(svc.ID).length === 4);
  let maxInFlight = 0;
  const stop = sim.store.watch(() => {
    const cur = sim.tasks(svc.ID, (x) => x.DesiredState === 'running' && x.Spec.ContainerSpec.Image === 'img:2' && x.Status.State !== 'running');
    maxInFlight = Math.max(maxInFlight, cur.length);
  });
  await sim.updateService(svc.ID, (s) => { s.Spec.TaskTemplate.ContainerSpec.Image = 'img:2'; });
  await sim.until('completed', () => sim.store.get('services', svc.ID)!.UpdateStatus?.State === 'completed');
  stop();
  t.is(maxInFlight, 1);
  t.true(sim.running(svc.ID).every((x) => x.Spec.ContainerSpec.Image === 'img:2'));
  t.is(sim.running(svc.ID).length, 4);

  sim.failImage.add('bad:1');
  await sim.updateService(svc.ID, (s) => { s.Spec.TaskTemplate.ContainerSpec.Image = 'bad:1'; });
  await sim.until('paused', () => sim.store.get('services', svc.ID)!.UpdateStatus?.State === 'paused');
  t.regex(sim.store.get('services', svc.ID)!.UpdateStatus!.Message, /update paused due to failure or early termination of task/);
  t.true(sim.running(svc.ID).length >= 3, 'the other tasks keep running');
});

test('rolling update: failure action rollback restores the previous spec', async (t) => {
  const sim = new Sim();
  await sim.start([simNode('a')]);
  t.teardown(() => sim.stop());
  const svc = await sim.createService({ Name: 'web', Mode: { Replicated: { Replicas: 2 } }, UpdateConfig: { FailureAction: 'rollback', Monitor: 100e6 } });
  await sim.until('2 running', () => sim.running(svc.ID).length === 2);
  sim.failImage.add('bad:1');
  await sim.updateService(svc.ID, (s) => { s.Spec.TaskTemplate.ContainerSpec.Image = 'bad:1'; });
  await sim.until('rolled back', () => sim.store.get('services', svc.ID)!.UpdateStatus?.State === 'rollback_completed', 10_000);
  t.is(sim.store.get('services', svc.ID)!.Spec.TaskTemplate.ContainerSpec.Image, 'img:1');
  await sim.until('2 running img:1', () => sim.running(svc.ID).filter((x) => x.Spec.ContainerSpec.Image === 'img:1').length === 2);
  t.pass();
});

test('deleted service: tasks are told to go and deleted once stopped; history is capped', async (t) => {
  const sim = new Sim();
  await sim.start([simNode('a')]);
  t.teardown(() => sim.stop());
  const svc = await sim.createService({ Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'img:1' }, RestartPolicy: { Delay: 0 } } });
  for (let i = 0; i < 8; i++) {
    await sim.until('running', () => sim.running(svc.ID).length === 1);
    const r = sim.running(svc.ID)[0];
    await sim.store.update((tx) => tx.update('tasks', { ...tx.get('tasks', r.ID)!, Status: { ...r.Status, State: 'failed' } }));
    await sim.until('replaced', () => sim.running(svc.ID).length === 1 && sim.running(svc.ID)[0].ID !== r.ID);
  }
  await sim.orchestrator.settle();
  t.true(sim.tasks(svc.ID).length <= 5, `history capped at 5, got ${sim.tasks(svc.ID).length}`);
  await sim.store.update((tx) => tx.remove('services', svc.ID));
  await sim.until('tasks gone', () => sim.tasks(svc.ID).length === 0);
  t.pass();
});

test('rolling update, start-first: one replacement per slot, the old task stops once the new one runs', async (t) => {
  const sim = new Sim();
  await sim.start([simNode('a'), simNode('b')]);
  t.teardown(() => sim.stop());
  const svc = await sim.createService({ Name: 'web', Mode: { Replicated: { Replicas: 3 } }, UpdateConfig: { Order: 'start-first', Monitor: 100e6 } });
  await sim.until('3 running', () => sim.running(svc.ID).length === 3);
  await sim.updateService(svc.ID, (s) => { s.Spec.TaskTemplate.ContainerSpec.Image = 'img:2'; });
  await sim.until('completed', () => sim.store.get('services', svc.ID)!.UpdateStatus?.State === 'completed');
  await sim.orchestrator.settle();
  t.is(sim.tasks(svc.ID).filter((x) => x.Spec.ContainerSpec.Image === 'img:2').length, 3, 'exactly one new task per slot');
  t.deepEqual(sim.running(svc.ID).map((x) => x.Spec.ContainerSpec.Image), ['img:2', 'img:2', 'img:2']);
  t.true(sim.tasks(svc.ID).filter((x) => x.Spec.ContainerSpec.Image === 'img:1').every((x) => x.DesiredState === 'shutdown'));
});
