// Integration test of netd/overlay on a 2-host netns lab with real busybox
// containers: cross-host HTTP over VXLAN, isolation between overlays, peer
// removal, idempotent re-programming after a driver restart, and clean teardown.
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { RemoteOverlayDriver, type Peer } from '../../netd/overlay/index.js';
import { macFromIPv4 } from '../../netd/ipam/index.js';
import { createLab, type Lab, type LabHost } from '../helpers/lab.js';

const run = promisify(execFile);
const N1 = { id: 'net1', vni: 4100, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const N2 = { id: 'net2', vni: 4101, subnet: '10.0.2.0/24', gateway: '10.0.2.1' };
// host i has node address .(1+i) on each network; containers get .10+
const nodeAddr = (net: typeof N1, i: number) => net.subnet.replace(/0\/24$/, String(1 + i));

let lab: Lab;
let h1: LabHost;
let h2: LabHost;
const drivers: RemoteOverlayDriver[] = [];
const containers: string[] = [];
const procs: ChildProcess[] = [];

async function startContainer(name: string, image: string): Promise<number> {
  const full = `${lab.prefix}-${name}`;
  containers.push(full);
  await run('docker', ['run', '-d', '--name', full, '--network', 'none', '--stop-timeout', '1', image, 'httpd', '-f', '-p', '80', '-h', '/www']);
  const { stdout } = await run('docker', ['inspect', '-f', '{{.State.Pid}}', full]);
  return Number(stdout.trim());
}

/** GET from inside a container; resolves to the body or undefined (bounded by `timeout`). */
async function get(container: string, url: string, seconds = 3): Promise<string | undefined> {
  try {
    const { stdout } = await run('docker', ['exec', `${lab.prefix}-${container}`, 'timeout', String(seconds), 'wget', '-qO-', url], { timeout: (seconds + 10) * 1000 });
    return stdout;
  } catch {
    return undefined;
  }
}

async function eventually(fn: () => Promise<string | undefined>, deadlineMs = 15_000): Promise<string | undefined> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const r = await fn();
    if (r !== undefined || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 300));
  }
}

const peer = (addr: string, host: LabHost): Peer => ({ addr, mac: macFromIPv4(addr), host: host.addr });

test.before(async () => {
  lab = await createLab(2);
  [h1, h2] = lab.hosts as [LabHost, LabHost];
  drivers.push(await RemoteOverlayDriver.spawn({ netns: h1.name }), await RemoteOverlayDriver.spawn({ netns: h2.name }));
});

test.after.always(async () => {
  for (const p of procs) p.kill('SIGKILL');
  if (containers.length) await run('docker', ['rm', '-f', ...containers]).catch(() => undefined);
  await Promise.all(drivers.map((d) => d.close().catch(() => undefined)));
  await lab?.destroy();
});

async function setUpNetwork(net: typeof N1) {
  const [d1, d2] = drivers as [RemoteOverlayDriver, RemoteOverlayDriver];
  await d1.ensureNetwork({ ...net, nodeAddr: nodeAddr(net, 1), underlayAddr: h1.addr });
  await d2.ensureNetwork({ ...net, nodeAddr: nodeAddr(net, 2), underlayAddr: h2.addr });
}

test.serial('containers on two hosts reach each other over VXLAN; the host reaches a remote container', async (t) => {
  const [d1, d2] = drivers as [RemoteOverlayDriver, RemoteOverlayDriver];
  await setUpNetwork(N1);
  await setUpNetwork(N1); // idempotent
  const [p1, p2] = await Promise.all([startContainer('c1', 'local/busybox:1'), startContainer('c2', 'local/busybox:2')]);
  const a1 = await d1.attach({ pid: p1, vni: N1.vni, address: '10.0.1.10', prefixLen: 24, gateway: N1.gateway });
  await d2.attach({ pid: p2, vni: N1.vni, address: '10.0.1.11', prefixLen: 24, gateway: N1.gateway });
  t.is(a1.mac, '02:42:0a:00:01:0a');
  t.deepEqual(await d1.setPeers(N1.vni, [peer('10.0.1.11', h2), peer(nodeAddr(N1, 2), h2)]), { added: 4, removed: 0, unchanged: 0 });
  await d2.setPeers(N1.vni, [peer('10.0.1.10', h1), peer(nodeAddr(N1, 1), h1)]);

  // count VXLAN packets arriving at host 2
  await lab.exec(h2, ['sh', '-c', 'nft add table inet probe && nft "add chain inet probe in { type filter hook input priority 0; }" && nft add rule inet probe in udp dport 4789 counter']);
  t.is(await eventually(() => get('c1', 'http://10.0.1.11/')), 'hello from busybox:2\n');
  t.is(await eventually(() => get('c2', 'http://10.0.1.10/')), 'hello from busybox:1\n');
  const { stdout: probe } = await lab.exec(h2, ['nft', 'list', 'table', 'inet', 'probe']);
  const packets = Number(/packets (\d+)/.exec(probe)?.[1] ?? 0);
  t.true(packets > 0, `VXLAN packets on UDP 4789 at host 2: ${packets}`);
  await lab.exec(h2, ['nft', 'delete', 'table', 'inet', 'probe']);

  // the host itself, with its own overlay address as source
  const { stdout: who } = await lab.exec(h1, ['curl', '-s', '--max-time', '5', 'http://10.0.1.11/cgi-bin/whoami']);
  t.regex(who, /remote=.*10\.0\.1\.2\]?\n/);
  // MTU and addressing inside the container
  const { stdout: ifc } = await run('docker', ['exec', `${lab.prefix}-c1`, 'ip', '-o', 'addr', 'show', 'eth0']);
  t.regex(ifc, /inet 10\.0\.1\.10\/24/);
  const { stdout: link } = await run('docker', ['exec', `${lab.prefix}-c1`, 'ip', '-o', 'link', 'show', 'eth0']);
  t.regex(link, /mtu 1450/);
  t.regex(link, /02:42:0a:00:01:0a/);
});

test.serial('two overlay networks are isolated from each other', async (t) => {
  const [d1, d2] = drivers as [RemoteOverlayDriver, RemoteOverlayDriver];
  await setUpNetwork(N2);
  const [p3, p4] = await Promise.all([startContainer('c3', 'local/busybox:1'), startContainer('c4', 'local/busybox:2')]);
  await d1.attach({ pid: p3, vni: N2.vni, address: '10.0.2.10', prefixLen: 24, gateway: N2.gateway });
  await d2.attach({ pid: p4, vni: N2.vni, address: '10.0.2.11', prefixLen: 24, gateway: N2.gateway });
  await d1.setPeers(N2.vni, [peer('10.0.2.11', h2)]);
  await d2.setPeers(N2.vni, [peer('10.0.2.10', h1)]);
  t.is(await eventually(() => get('c3', 'http://10.0.2.11/')), 'hello from busybox:2\n');
  // net2 -> net1, same host and remote host; net1 -> net2
  const dbg = await get('c3', 'http://10.0.1.10/');
  if (dbg) {
    for (const h of [h1, h2]) t.log(h.name, (await lab.exec(h, ['sh', '-c', 'ip -br link; ip -br addr; nft list ruleset; iptables -S; ip route; sysctl net.bridge.bridge-nf-call-iptables'])).stdout);
    t.log((await run('docker', ['exec', `${lab.prefix}-c3`, 'sh', '-c', 'ip addr; ip route; ip neigh'])).stdout);
    t.log((await run('sh', ['-c', 'ip -br link | grep -i shb; nft list tables'])).stdout);
  }
  t.is(dbg, undefined);
  t.is(await get('c3', 'http://10.0.1.11/'), undefined);
  t.is(await get('c1', 'http://10.0.2.10/'), undefined);
  // net1 still works
  t.is(await eventually(() => get('c1', 'http://10.0.1.11/')), 'hello from busybox:2\n');
});

test.serial('egress leaving the overlay is masqueraded to the host address', async (t) => {
  // a TCP server on host 2's underlay address, outside every overlay, that prints the peer address
  const srv = spawn('/usr/sbin/ip', ['netns', 'exec', h2.name, '/usr/bin/socat', `TCP-LISTEN:8099,bind=${h2.addr},reuseaddr,fork`,
    'SYSTEM:echo peer=$SOCAT_PEERADDR'], { stdio: 'ignore' });
  procs.push(srv);
  const out = await eventually(async () => {
    try {
      const { stdout } = await run('docker', ['exec', `${lab.prefix}-c1`, 'timeout', '3', 'nc', h2.addr, '8099'], { timeout: 15_000 });
      return stdout.includes('peer=') ? stdout : undefined;
    } catch {
      return undefined;
    }
  });
  t.is(out?.trim(), `peer=${h1.addr}`);
});

test.serial('removing peers stops traffic; restoring them brings it back', async (t) => {
  const [d1] = drivers as [RemoteOverlayDriver];
  t.deepEqual(await d1.setPeers(N1.vni, [peer(nodeAddr(N1, 2), h2)]), { added: 0, removed: 2, unchanged: 2 });
  t.is(await get('c1', 'http://10.0.1.11/'), undefined);
  await d1.setPeers(N1.vni, [peer('10.0.1.11', h2), peer(nodeAddr(N1, 2), h2)]);
  t.is(await eventually(() => get('c1', 'http://10.0.1.11/')), 'hello from busybox:2\n');
});

test.serial('a restarted driver re-applies the same state without touching the kernel objects', async (t) => {
  const before = await lab.exec(h1, ['ip', '-o', 'link', 'show']);
  await drivers[0]!.close();
  const d1 = await RemoteOverlayDriver.spawn({ netns: h1.name });
  drivers[0] = d1;
  const { stdout: pid } = await run('docker', ['inspect', '-f', '{{.State.Pid}}', `${lab.prefix}-c1`]);
  await d1.ensureNetwork({ ...N1, nodeAddr: nodeAddr(N1, 1), underlayAddr: h1.addr });
  await d1.attach({ pid: Number(pid), vni: N1.vni, address: '10.0.1.10', prefixLen: 24, gateway: N1.gateway });
  t.deepEqual(await d1.setPeers(N1.vni, [peer('10.0.1.11', h2), peer(nodeAddr(N1, 2), h2)]), { added: 0, removed: 0, unchanged: 4 });
  const after = await lab.exec(h1, ['ip', '-o', 'link', 'show']);
  const ids = (s: string) => s.split('\n').map((l) => l.split('    ')[0]!.replace(/state \S+/, '')).filter((l) => /sh[bvc]/.test(l)).sort();
  t.deepEqual(ids(after.stdout), ids(before.stdout));
  t.is(await eventually(() => get('c1', 'http://10.0.1.11/')), 'hello from busybox:2\n');
});

test.serial('detach and removeNetwork leave no kernel objects, rules or tables behind', async (t) => {
  const [d1, d2] = drivers as [RemoteOverlayDriver, RemoteOverlayDriver];
  await d1.detach({ vni: N1.vni, address: '10.0.1.10' });
  await d1.detach({ vni: N1.vni, address: '10.0.1.10' }); // idempotent
  const { stdout: inC1 } = await run('docker', ['exec', `${lab.prefix}-c1`, 'ip', '-o', 'link']);
  t.notRegex(inC1, /eth0/);
  for (const [d, h] of [[d1, h1], [d2, h2]] as const) {
    await d.removeNetwork(N1.vni);
    await d.removeNetwork(N2.vni);
    await d.removeNetwork(N2.vni);
    t.deepEqual(await d.networks(), []);
    const { stdout: links } = await lab.exec(h, ['ip', '-o', 'link', 'show']);
    t.notRegex(links, /sh[bvc][0-9a-f]+/);
    const { stdout: tables } = await lab.exec(h, ['nft', 'list', 'tables']);
    t.notRegex(tables, /shoal_overlay/);
    const { stdout: rules } = await lab.exec(h, ['iptables', '-S']);
    t.notRegex(rules, /SHOAL/);
  }
});
