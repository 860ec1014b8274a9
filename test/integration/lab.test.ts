// Integration test of deploy/lab (lab.sh and test/helpers/lab.ts): hosts as
// namespaces on an underlay bridge, reachable from each other, and nothing
// left behind by down and gc.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { LAB_SH, createLab, labPrefix } from '../helpers/lab.js';

const run = promisify(execFile);
const leftovers = async (prefix: string) => {
  const { stdout: ns } = await run('/usr/sbin/ip', ['netns', 'list']);
  const { stdout: links } = await run('/usr/sbin/ip', ['-o', 'link', 'show']);
  const { stdout: fwd } = await run('/usr/sbin/iptables', ['-w', '5', '-S', 'FORWARD']);
  return [ns, links, fwd].flatMap((s) => s.split('\n')).filter((l) => l.includes(`${prefix}-`));
};

test('a 3-host lab: addresses, underlay reachability, clean teardown', async (t) => {
  const lab = await createLab(3);
  t.teardown(() => lab.destroy());
  t.deepEqual(lab.hosts.map((h) => h.addr), ['10.231.0.11', '10.231.0.12', '10.231.0.13']);
  t.deepEqual(lab.hosts.map((h) => h.name), [1, 2, 3].map((i) => `${lab.prefix}-${i}`));
  const [h1, h2, h3] = lab.hosts;
  const { stdout: addr } = await lab.exec(h2!, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  t.regex(addr, /10\.231\.0\.12\/24/);
  const { stdout: lo } = await lab.exec(h2!, ['ip', '-o', 'link', 'show', 'lo']);
  t.regex(lo, /UP/);
  const { stdout: fwd } = await lab.exec(h3!, ['sysctl', '-n', 'net.ipv4.ip_forward']);
  t.is(fwd.trim(), '1');

  // TCP from host 1 to host 3 over the underlay bridge (the root namespace's FORWARD policy may be DROP)
  const srv = spawn('/usr/sbin/ip', ['netns', 'exec', h3!.name, '/usr/bin/socat', `TCP-LISTEN:7000,bind=${h3!.addr},reuseaddr,fork`,
    'SYSTEM:echo peer=$SOCAT_PEERADDR'], { stdio: 'ignore' });
  t.teardown(() => { srv.kill('SIGKILL'); });
  let got = '';
  for (const end = Date.now() + 10_000; !got && Date.now() < end;) {
    try {
      ({ stdout: got } = await lab.exec(h1!, ['timeout', '3', 'socat', '-u', `TCP:${h3!.addr}:7000`, '-']));
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  t.is(got.trim(), `peer=${h1!.addr}`);

  srv.kill('SIGKILL');
  await lab.destroy();
  t.deepEqual(await leftovers(lab.prefix), []);
});

test('two labs coexist; gc removes labs whose owner is gone and keeps live ones', async (t) => {
  const live = await createLab(1);
  t.teardown(() => live.destroy());
  const orphan = labPrefix();
  t.teardown(() => run(LAB_SH, ['down', orphan]).then(() => undefined, () => undefined));
  // owner pid that cannot exist (above pid_max)
  await run(LAB_SH, ['up', '2', orphan], { env: { ...process.env, LAB_OWNER_PID: '99999999' } });
  t.is((await leftovers(orphan)).length > 0, true);
  const { stdout } = await run(LAB_SH, ['gc']);
  t.regex(stdout, new RegExp(`removing lab ${orphan}`));
  t.notRegex(stdout, new RegExp(live.prefix));
  t.deepEqual(await leftovers(orphan), []);
  const { stdout: addr } = await live.exec(live.hosts[0]!, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  t.regex(addr, /10\.231\.0\.11/);
});

test('bad arguments are refused', async (t) => {
  await t.throwsAsync(run(LAB_SH, ['up', '0', labPrefix()]));
  await t.throwsAsync(run(LAB_SH, ['up', '2', 'Bad_Prefix']));
  await t.throwsAsync(run(LAB_SH, ['up', '2', 'waytoolongprefix']));
});
