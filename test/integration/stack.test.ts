// `docker stack` end to end on a two-host netns lab (agents with the data
// plane on): a compose file with two services, an overlay network, a secret,
// a config and a published port deploys; the port answers on both hosts; the
// secret reaches the task on the worker host (delivered over its session);
// stack ls/services/ps show it; a redeploy updates; stack rm removes every
// object and container.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { createLabCluster, type LabCluster } from '../helpers/lab-cluster.js';
import { hostDocker } from '../helpers/docker.js';
import { waitFor } from '../helpers/wait.js';

const sfx = Math.random().toString(36).slice(2, 7);
const stack = `st${sfx}`;
const PW = `pw-${sfx}-${Math.random().toString(36).slice(2, 10)}`;
const port = 18000 + Math.floor(Math.random() * 1000);
let c: LabCluster;
let dir: string;

function compose(replicasWorker: number): string {
  return `version: "3.8"
services:
  web:
    image: local/busybox:1
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["${port}:80"]
    networks: [front]
    secrets: [db_pass]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
  worker:
    image: local/busybox:1
    command: ["sleep", "3600"]
    networks: [front]
    configs:
      - source: app_conf
        target: /etc/app.conf
    stop_grace_period: 1s
    deploy:
      replicas: ${replicasWorker}
networks:
  front:
    driver: overlay
secrets:
  db_pass:
    file: ./db_pass.txt
configs:
  app_conf:
    file: ./app.conf
`;
}

const stackContainers = async () => (await hostDocker(['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${stack}`])).stdout.split('\n').filter(Boolean);

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-stack-'));
  writeFileSync(join(dir, 'db_pass.txt'), PW);
  writeFileSync(join(dir, 'app.conf'), 'a=1\n');
  writeFileSync(join(dir, 'compose.yml'), compose(1));
  c = await createLabCluster(2);
});

test.after.always(async () => {
  await c?.manager.docker(['stack', 'rm', stack]).catch(() => undefined);
  const ids = (c?.agents ?? []).map((a) => a.nodeId()).filter((x): x is string => !!x);
  await c?.destroy();
  for (const id of ids) rmSync(join(process.env.SHOAL_SECRETS_DIR || '/run/shoal/secrets', id), { recursive: true, force: true });
  const left = await stackContainers();
  if (left.length) await hostDocker(['rm', '-f', ...left]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.serial('deploy: network, secret, config, two services with labels; the port answers on both hosts', async (t) => {
  const out = await c.ok(['stack', 'deploy', '-c', join(dir, 'compose.yml'), stack]);
  t.regex(out, new RegExp(`Creating network ${stack}_front`));
  t.regex(out, new RegExp(`Creating secret ${stack}_db_pass`));
  t.regex(out, new RegExp(`Creating service ${stack}_web`));
  await waitFor('web 2/2, worker 1/1', async () => {
    const s = await c.ok(['stack', 'services', stack, '--format', '{{.Name}} {{.Replicas}}']);
    return s.includes(`${stack}_web 2/2`) && s.includes(`${stack}_worker 1/1`);
  }, { timeoutMs: 90_000 });
  t.regex(await c.ok(['stack', 'ls']), new RegExp(`${stack}\\s+2`));
  t.regex(await c.ok(['stack', 'services', stack]), new RegExp(`\\*:${port}->80/tcp`));
  const ps = await c.ok(['stack', 'ps', stack, '--format', '{{.Name}} {{.CurrentState}}']);
  t.is(ps.trim().split('\n').filter((l) => l.includes('Running')).length, 3, ps);
  t.regex(await c.ok(['network', 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`]), new RegExp(`${stack}_front\\s+overlay\\s+swarm`));
  for (const h of c.lab.hosts) {
    const body = await waitFor(`port ${port} on ${h.name}`, async () =>
      c.lab.exec(h, ['timeout', '5', 'wget', '-qO-', `http://${h.addr}:${port}/`]).catch(() => undefined), { timeoutMs: 30_000 });
    t.regex(body.stdout, /hello from busybox:1/);
  }
  // one web task per host: the worker host's copy of the secret came over its session
  for (const a of c.agents) {
    const [cid] = await c.containersOf(a, `${stack}_web`);
    t.truthy(cid, `web runs on ${a.hostname}`);
    t.is((await c.exec(cid!, `cat /run/secrets/db_pass`)).stdout, PW);
  }
  const [wcid] = [...await c.containersOf(c.agents[0]!, `${stack}_worker`), ...await c.containersOf(c.agents[1]!, `${stack}_worker`)];
  t.is((await c.exec(wcid!, 'cat /etc/app.conf')).stdout, 'a=1\n');
});

test.serial('redeploying a changed file updates the stack in place', async (t) => {
  writeFileSync(join(dir, 'compose.yml'), compose(2));
  const out = await c.ok(['stack', 'deploy', '-c', join(dir, 'compose.yml'), stack]);
  t.regex(out, new RegExp(`Updating service ${stack}_worker`));
  await waitFor('worker 2/2', async () => (await c.ok(['stack', 'services', stack, '--format', '{{.Name}} {{.Replicas}}'])).includes(`${stack}_worker 2/2`), { timeoutMs: 60_000 });
  t.is((await c.ok(['secret', 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`, '-q'])).trim().split('\n').length, 1);
});

test.serial('stack rm removes services, network, secret, config and containers', async (t) => {
  const out = await c.ok(['stack', 'rm', stack]);
  t.regex(out, new RegExp(`Removing secret ${stack}_db_pass`));
  t.regex(out, new RegExp(`Removing network ${stack}_front`));
  t.false((await c.ok(['stack', 'ls'])).includes(stack));
  for (const kind of ['secret', 'config', 'network', 'service']) {
    t.is((await c.ok([kind, 'ls', '-q', '--filter', `label=com.docker.stack.namespace=${stack}`])).trim(), '', `${kind}s gone`);
  }
  await waitFor('containers gone', async () => (await stackContainers()).length === 0, { timeoutMs: 60_000 });
  t.pass();
});
