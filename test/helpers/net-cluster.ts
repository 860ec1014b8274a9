// Networking helpers for lab-cluster tests and benchmarks: task addresses as
// the API reports them, container pids, kernel objects netd owns in a lab
// host (links, static FDB and neighbour entries, rules), node scripts run in
// a namespace, and dig.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LabCluster } from './lab-cluster.js';
import type { LabHost } from './lab.js';
import { hostDocker } from './docker.js';
import { waitFor } from './wait.js';

export interface TaskAddr { id: string; nodeId: string; state: string; addr: string; container?: string }

/** tasks of a service meant to run, with their address on `network` */
export async function taskAddrs(c: LabCluster, service: string, network: string): Promise<TaskAddr[]> {
  const ids = (await c.ok(['service', 'ps', service, '-q', '--no-trunc', '--filter', 'desired-state=running'])).trim().split('\n').filter(Boolean);
  if (!ids.length) return [];
  const tasks = JSON.parse(await c.ok(['inspect', '--type', 'task', ...ids])) as {
    ID: string; NodeID: string; Status: { State: string; ContainerStatus?: { ContainerID?: string } };
    NetworksAttachments?: { Network: { Spec: { Name: string } }; Addresses: string[] }[];
  }[];
  return tasks.map((t) => ({
    id: t.ID, nodeId: t.NodeID, state: t.Status.State, container: t.Status.ContainerStatus?.ContainerID,
    addr: t.NetworksAttachments?.find((a) => a.Network.Spec.Name === network)?.Addresses[0]?.split('/')[0] ?? '',
  }));
}

/** waits until exactly n tasks of the service run, and returns them */
export async function waitRunning(c: LabCluster, service: string, network: string, n: number, timeoutMs = 90_000): Promise<TaskAddr[]> {
  return waitFor(`${n} running tasks of ${service}`, async () => {
    const ts = await taskAddrs(c, service, network);
    return ts.length === n && ts.every((t) => t.state === 'running' && t.addr) ? ts : undefined;
  }, { timeoutMs, intervalMs: 300 });
}

export async function containerPid(container: string): Promise<number> {
  const r = await hostDocker(['inspect', '-f', '{{.State.Pid}}', container]);
  const pid = Number(r.stdout.trim());
  if (!pid) throw new Error(`no pid for container ${container}: ${r.stderr}`);
  return pid;
}

/** index of the agent (and lab host) that runs a node id */
export const hostIndexOf = (c: LabCluster, nodeId: string) => c.agents.findIndex((a) => a.nodeId() === nodeId);

export interface KernelObjects {
  links: string[];
  /** FDB entries on shoal devices ("mac dev X dst Y" and the like) */
  fdb: string[];
  /** neighbour entries on shoal devices */
  neigh: string[];
  /** nft rule lines and iptables rules shoal owns */
  rules: number;
}

/** what netd has in a host namespace: links named sh*, their FDB and neighbour entries, its rules */
export async function kernelObjects(c: LabCluster, host: LabHost): Promise<KernelObjects> {
  const sh = (cmd: string) => c.lab.exec(host, ['sh', '-c', cmd]).then((r) => r.stdout.split('\n').filter(Boolean));
  const links = (await sh('ip -o link show')).map((l) => l.split(': ')[1]!.split('@')[0]!).filter((n) => /^sh[bvc]/.test(n));
  const fdb = (await sh('bridge fdb show')).filter((l) => / dev sh[bvc]\S* /.test(l + ' ') && (/ dst /.test(l) || /permanent|static/.test(l)));
  const neigh = (await sh('ip neigh show')).filter((l) => / dev sh[bvc]/.test(l));
  const rules = (await sh('nft list ruleset 2>/dev/null | grep -c . ; iptables -w 5 -S 2>/dev/null | grep -c SHOAL || true')).reduce((a, b) => a + Number(b || 0), 0);
  return { links: links.sort(), fdb: fdb.sort(), neigh: neigh.sort(), rules };
}

/** static peers on a network's VXLAN device: remote MACs' FDB destinations and permanent neighbours */
export async function vxlanPeers(c: LabCluster, host: LabHost, vni: number): Promise<{ fdb: string[]; neigh: string[] }> {
  const sh = (cmd: string) => c.lab.exec(host, ['sh', '-c', cmd]).then((r) => r.stdout.split('\n').filter(Boolean));
  const fdb = (await sh(`bridge fdb show dev shv${vni}`)).filter((l) => / dst /.test(l) && !l.startsWith('00:00:00:00:00:00'));
  const neigh = (await sh(`ip neigh show dev shv${vni} nud permanent`)).map((l) => l.split(' ')[0]!);
  return { fdb: fdb.map((l) => l.split(' ')[0]!).sort(), neigh: neigh.sort() };
}

/** VNI of an overlay network, as `network inspect` shows it */
export async function vniOf(c: LabCluster, network: string): Promise<number> {
  const n = JSON.parse(await c.ok(['network', 'inspect', network]))[0];
  return Number(n.Options?.['com.docker.network.driver.overlay.vxlanid_list'] ?? n.DriverState?.Options?.['com.docker.network.driver.overlay.vxlanid_list']);
}

export async function subnetOf(c: LabCluster, network: string): Promise<{ subnet: string; gateway: string }> {
  const n = JSON.parse(await c.ok(['network', 'inspect', network]))[0];
  return { subnet: n.IPAM.Config[0].Subnet, gateway: n.IPAM.Config[0].Gateway };
}

/** `dig +short`-style answer lines from a lab host (UDP, or TCP with tcp=true) */
export async function dig(c: LabCluster, host: LabHost, server: string, name: string, opts: { tcp?: boolean; type?: string } = {}): Promise<{ status: string; answers: string[]; text: string }> {
  const r = await c.lab.exec(host, ['dig', `@${server}`, name, opts.type ?? 'A', '+time=2', '+tries=2', ...(opts.tcp ? ['+tcp'] : []), '+noall', '+answer', '+comments'], { timeoutMs: 15_000 });
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? '';
  const answers = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).pop()!).sort();
  return { status, answers, text: r.stdout };
}

/** node script compiled next to this file, run inside a lab host (`ip netns exec`) */
export function runInHost(host: string | LabHost, script: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const js = fileURLToPath(new URL(`./${script}.js`, import.meta.url));
  const ns = typeof host === 'string' ? host : host.name;
  return new Promise((resolve, reject) => {
    execFile('/usr/sbin/ip', ['netns', 'exec', ns, process.execPath, js, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`${script} in ${ns}: ${stderr || err.message}`)) : resolve(out));
  });
}
