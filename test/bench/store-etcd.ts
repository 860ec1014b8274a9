// Store and failover benchmark: service-update writes/s on EmbeddedStore and
// on EtcdStore over a 1-member and a 3-member etcd (agent-managed, loopback,
// plain http), in the same run; then leader loss: three managers, each with
// its own etcd member and a client to that member only, the leader's member
// killed -9 (its host dies) → another manager elected, and → its first
// successful fenced write. Median of 5. Run: node dist/test/bench/store-etcd.js [updates] [ttlSeconds]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaderElection } from '../../agent/manager/ha/election.js';
import { addMember, listMembers } from '../../agent/manager/ha/etcd-cluster.js';
import { EtcdMember } from '../../agent/manager/ha/etcd-member.js';
import { EmbeddedStore } from '../../agent/manager/store/embedded.js';
import { EtcdStore, etcdClient, type Fence } from '../../agent/manager/store/etcd.js';
import type { Store } from '../../agent/manager/store/types.js';
import type { Service } from '../../agent/common/types.js';
import { freePort } from '../helpers/net.js';

const UPDATES = Number(process.argv[2] ?? 2000);
const TTL = Number(process.argv[3] ?? 2);
const SERVICES = 50;
const dirs: string[] = [];
const members: EtcdMember[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'shoal-bench-etcd-')); dirs.push(d); return d; };
const rnd = (n: number) => 1 + Math.floor(Math.random() * n);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function svc(id: string): Service {
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: '', UpdatedAt: '',
    Spec: { Name: id, Labels: { n: '0' }, TaskTemplate: { ContainerSpec: { Image: 'local/busybox:1' } }, Mode: { Replicated: { Replicas: 1 } } },
    Endpoint: { Spec: {} },
  };
}

async function cluster(n: number): Promise<EtcdMember[]> {
  const net = `127.${rnd(250)}.${rnd(250)}`;
  const out: EtcdMember[] = [];
  for (let i = 1; i <= n; i++) {
    const ip = `${net}.${i}`;
    const cport = await freePort(ip);
    let pport = await freePort(ip);
    while (pport === cport) pport = await freePort(ip);
    const m = new EtcdMember({ name: `m${i}`, dir: tmp(), clientAddr: `${ip}:${cport}`, peerAddr: `${ip}:${pport}`, clusterToken: net });
    members.push(m);
    out.push(m);
    if (i === 1) await m.initCluster();
    else {
      const c = out[0].client();
      try { await m.joinCluster((await addMember(c, m.opts.name, m.peerURL)).initialCluster); } finally { c.close(); }
    }
  }
  return out;
}

/** `UPDATES` service updates (read, change a label, write), `concurrency` in flight */
async function writes(store: Store, concurrency: number): Promise<number> {
  await store.update((tx) => { for (let i = 0; i < SERVICES; i++) if (!tx.get('services', `s${i}`)) tx.create('services', svc(`s${i}`)); });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    while (next < UPDATES) {
      next++;
      const id = `s${(w + next) % SERVICES}`;
      await store.update((tx) => {
        const o = tx.get('services', id)!;
        o.Spec.Labels = { n: String(Number(o.Spec.Labels?.n ?? 0) + 1) };
        tx.update('services', o);
      });
    }
  }));
  return UPDATES / ((performance.now() - t0) / 1000);
}

async function throughput(): Promise<void> {
  const rows: [string, number, number][] = [];
  const emb = await EmbeddedStore.open(tmp());
  rows.push(['EmbeddedStore (journal + fsync)', await writes(emb, 1), await writes(emb, 16)]);
  await emb.close();
  for (const n of [1, 3]) {
    const ms = await cluster(n);
    const s = await EtcdStore.open({ endpoints: ms.map((m) => m.clientURL), prefix: '/bench/' });
    rows.push([`EtcdStore, ${n} member${n > 1 ? 's' : ''}`, await writes(s, 1), await writes(s, 16)]);
    await s.close();
    for (const m of ms) await m.kill();
  }
  console.log(`\nservice updates/s (${UPDATES} updates over ${SERVICES} services)`);
  console.log('store'.padEnd(36) + 'sequential'.padStart(12) + '16 in flight'.padStart(14));
  for (const [name, seq, par] of rows) console.log(name.padEnd(36) + seq.toFixed(0).padStart(12) + par.toFixed(0).padStart(14));
}

interface Manager { id: string; member: EtcdMember; el: LeaderElection; store: EtcdStore; fence?: Fence; electedAt?: number }

async function failover(rounds: number): Promise<void> {
  const ms = await cluster(3);
  const managers: Manager[] = [];
  for (const [i, m] of ms.entries()) {
    const client = etcdClient({ endpoints: [m.clientURL] });
    const store = await EtcdStore.withClient(client, '/bench-fo/');
    const mgr = { id: `mgr-${i + 1}`, member: m, store } as Manager;
    mgr.el = new LeaderElection(client, {
      nodeId: mgr.id, ttlSeconds: TTL,
      onElected: (f) => { mgr.fence = f; mgr.electedAt = performance.now(); },
      onDeposed: () => { mgr.fence = undefined; },
    });
    mgr.el.start();
    managers.push(mgr);
  }
  const toLeader: number[] = [];
  const toWrite: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let leader: Manager | undefined;
    for (let i = 0; i < 200 && !(leader = managers.find((m) => m.el.isLeader())); i++) await sleep(100);
    if (!leader) throw new Error('no leader');
    await sleep(1_500); // steady state: keepalives flowing
    for (const m of managers) if (m !== leader) m.electedAt = undefined;
    const t0 = performance.now();
    await leader.member.kill();
    let next: Manager | undefined;
    for (let i = 0; i < 600 && !(next = managers.find((m) => m !== leader && m.electedAt)); i++) await sleep(10);
    if (!next) throw new Error('no new leader');
    toLeader.push(next.electedAt! - t0);
    for (let i = 0; ; i++) {
      try {
        await next.store.fenced(next.fence!).update((tx) => tx.create('services', svc(`after-${r}`)));
        break;
      } catch (err) {
        if (i > 200) throw err;
        await sleep(20);
      }
    }
    toWrite.push(performance.now() - t0);
    // the dead host comes back before the next round
    await leader.member.start();
    const c = next.member.client();
    for (let i = 0; i < 300; i++) {
      if ((await listMembers(c).catch(() => [])).filter((x) => x.healthy).length === 3) break;
      await sleep(100);
    }
    c.close();
  }
  console.log(`\nleader loss (leader's host: etcd member killed -9, lease TTL ${TTL} s), ${rounds} rounds`);
  console.log(`  → new leader elected:          median ${(median(toLeader) / 1000).toFixed(2)} s  (${toLeader.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
  console.log(`  → first successful write:      median ${(median(toWrite) / 1000).toFixed(2)} s  (${toWrite.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
  for (const m of managers) { await m.el.stop(); await m.store.close(); m.store.client.close(); }
}

try {
  if (process.env.SKIP_THROUGHPUT !== '1') await throughput();
  await failover(5);
} finally {
  for (const m of members) await m.kill().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(0);
