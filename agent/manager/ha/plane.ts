// Owns a manager's etcd side: its supervised etcd member (or an external
// cluster), the etcd client, the EtcdStore, the leader election, the cluster
// secrets every manager needs (swarm CA and etcd CA, with their keys) kept in
// etcd under their own prefix, member health for `node ls`, and the etcd half
// of admitting, demoting and removing managers. etcd trusts only its own CA
// (made at `swarm init`, apart from the swarm CA), so worker certificates can
// never open the store; managers use their member certificate as client
// certificate. Layout under the state dir: etcd/ (member data, tls, log),
// etcd-ca/ (etcd CA).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { keyPath, loadOrCreateKey } from '../secrets/datakey.js';
import type { Etcd3 } from 'etcd3';
import { errorMessage, invalid, unavailable } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { createRootCA, type RootCA } from '../ca/ca.js';
import { EtcdStore, etcdClient, type EtcdTLS, type Fence } from '../store/etcd.js';
import { LeaderElection } from './election.js';
import { issueEtcdCert, type EtcdCert } from './etcd-certs.js';
import { addMember, findMember, listMembers, removeMember, type MemberStatus } from './etcd-cluster.js';
import { EtcdMember } from './etcd-member.js';
import { ETCD_CLIENT_PORT, ETCD_PACKAGE_HINT, ETCD_PEER_PORT, etcdInstalled, type StoreMode } from './store-mode.js';

const log = logger('ha');
const SECRETS = '/shoal-secrets/';

/** what a manager joining an agent-managed etcd cluster gets in its join response */
export interface EtcdJoinInfo {
  /** --initial-cluster for the new member */
  initialCluster: string;
  clusterToken: string;
  /** the new member's certificate and key (etcd CA) */
  cert: EtcdCert;
  /** client URLs of the members already there */
  clientURLs: string[];
}

export interface PlaneOptions {
  stateDir: string;
  nodeId: string;
  /** the IP the member listens and advertises on (the node's advertise address) */
  ip: string;
  clusterId: string;
  mode: Exclude<StoreMode, { kind: 'embedded' }>;
  etcdBin?: string;
}


/** a manager whose linearizable reads have failed for this long has lost the quorum */
const QUORUM_STALE_MS = 3_000;
const CALL_TIMEOUT_MS = 3_000;

export class EtcdPlane {
  private election?: LeaderElection;
  private lastMembers: MemberStatus[] = [];
  private lastQuorumAt = Date.now();
  private probe?: NodeJS.Timeout;

  private constructor(
    readonly opts: PlaneOptions,
    readonly client: Etcd3,
    readonly store: EtcdStore,
    readonly member: EtcdMember | undefined,
    private readonly tls: EtcdTLS | undefined,
  ) {}

  private static dir(o: PlaneOptions): string { return join(o.stateDir, 'etcd'); }

  private static newMember(o: PlaneOptions, cert: EtcdCert): EtcdMember {
    if (!etcdInstalled(o.etcdBin)) throw unavailable(ETCD_PACKAGE_HINT);
    return new EtcdMember({
      name: o.nodeId, dir: EtcdPlane.dir(o), clientAddr: `${o.ip}:${ETCD_CLIENT_PORT}`, peerAddr: `${o.ip}:${ETCD_PEER_PORT}`,
      tls: cert, clusterToken: o.clusterId, etcdBin: o.etcdBin,
    });
  }

  /**
   * connects client and store; on failure everything started here is stopped again. A manager with its
   * own member talks to that member only: the etcd3 client sends each call to a random endpoint and does
   * not fail over, so a dead or cut-off peer in the list would fail a share of all calls; a member that
   * has no quorum refuses linearizable calls itself, which is what a cut-off manager must see.
   */
  private static async connect(o: PlaneOptions, member: EtcdMember | undefined, endpoints: string[], tls: EtcdTLS | undefined): Promise<EtcdPlane> {
    // a call to a member whose Raft leader just died hangs until this deadline (etcd drops the forwarded
    // proposal): 3 s rather than the client's 5 s lets the next attempt reach the new Raft leader sooner
    const client = etcdClient({ endpoints: member ? [member.clientURL] : endpoints, tls, callTimeoutMs: CALL_TIMEOUT_MS });
    try {
      const store = await EtcdStore.withClient(client, '/shoal/');
      const plane = new EtcdPlane(o, client, store, member, tls);
      plane.startProbe();
      return plane;
    } catch (err) {
      client.close();
      await member?.stop();
      throw err;
    }
  }

  /** `swarm init`: a new single-member etcd (or the external cluster), the CAs stored in it */
  static async init(o: PlaneOptions, swarmCA: RootCA): Promise<EtcdPlane> {
    if (o.mode.kind === 'external') {
      const plane = await EtcdPlane.connect(o, undefined, o.mode.endpoints, o.mode.tls);
      await plane.putSecrets(swarmCA, undefined);
      return plane;
    }
    const etcdCA = await createRootCA();
    writeCA(join(o.stateDir, 'etcd-ca'), etcdCA);
    const cert = await issueEtcdCert(etcdCA, o.nodeId, [o.ip]);
    const member = EtcdPlane.newMember(o, cert);
    await member.initCluster();
    const plane = await EtcdPlane.connect(o, member, [member.clientURL], cert);
    try {
      await plane.putSecrets(swarmCA, etcdCA);
    } catch (err) {
      await plane.close();
      throw err;
    }
    return plane;
  }

  /** a manager join: start the member added for us, then read the CAs from etcd; returns the swarm CA */
  static async join(o: PlaneOptions, info: EtcdJoinInfo | undefined): Promise<{ plane: EtcdPlane; swarmCA: RootCA }> {
    let plane: EtcdPlane;
    if (o.mode.kind === 'external') {
      plane = await EtcdPlane.connect(o, undefined, o.mode.endpoints, o.mode.tls);
    } else {
      if (!info) throw invalid('the manager did not send etcd membership: it does not run an agent-managed etcd (start every manager with the same --store)');
      const member = EtcdPlane.newMember({ ...o, clusterId: info.clusterToken }, info.cert);
      try {
        await member.joinCluster(info.initialCluster);
      } catch (err) {
        await EtcdPlane.rescue(o, member, info);
        throw err;
      }
      plane = await EtcdPlane.connect(o, member, [], info.cert);
    }
    try {
      const { swarmCA, etcdCA } = await plane.getSecrets();
      if (etcdCA) writeCA(join(o.stateDir, 'etcd-ca'), etcdCA);
      return { plane, swarmCA };
    } catch (err) {
      await plane.close();
      throw err;
    }
  }

  /** a member that never came up must not stay in the cluster's quorum: remove it through the others */
  private static async rescue(o: PlaneOptions, member: EtcdMember, info: EtcdJoinInfo): Promise<void> {
    await member.destroy().catch(() => undefined);
    const c = etcdClient({ endpoints: info.clientURLs, tls: info.cert, callTimeoutMs: 3_000 });
    try {
      const m = await findMember(c, o.nodeId);
      if (m) await removeMember(c, m.ID);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'could not remove the etcd member that failed to start; remove it by hand (etcdctl member remove)');
    } finally {
      c.close();
    }
  }

  /** agent restart: the member from its data dir (or the external cluster); `forceNewCluster` restarts it as a one-member cluster */
  static async resume(o: PlaneOptions, opts: { forceNewCluster?: boolean } = {}): Promise<EtcdPlane> {
    if (o.mode.kind === 'external') return EtcdPlane.connect(o, undefined, o.mode.endpoints, o.mode.tls);
    const tlsDir = join(EtcdPlane.dir(o), 'tls');
    const cert: EtcdCert = {
      caPem: readFileSync(join(tlsDir, 'ca.pem'), 'utf8'), certPem: readFileSync(join(tlsDir, 'member.pem'), 'utf8'), keyPem: readFileSync(join(tlsDir, 'member-key.pem'), 'utf8'),
    };
    const member = EtcdPlane.newMember(o, cert);
    if (opts.forceNewCluster) await member.forceNewCluster();
    else await member.start();
    return EtcdPlane.connect(o, member, [], cert);
  }

  get agentManaged(): boolean { return !!this.member; }

  /** true while a linearizable read succeeded lately: the members this manager reaches form a quorum */
  hasQuorum(): boolean { return Date.now() - this.lastQuorumAt < QUORUM_STALE_MS; }

  private startProbe(): void {
    let inFlight = false;
    this.probe = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      const read = this.client.kv.range({ key: Buffer.from(`${SECRETS}swarm-ca.pem`), count_only: true });
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1_500).unref?.());
      Promise.race([read, timeout]).then(() => { this.lastQuorumAt = Date.now(); }, () => undefined).finally(() => { inFlight = false; });
    }, 500);
    this.probe.unref?.();
  }

  /** the CAs and the secrets data key (every manager must open what another sealed) go to etcd once, at init */
  private async putSecrets(swarmCA: RootCA, etcdCA: RootCA | undefined): Promise<void> {
    loadOrCreateKey(this.opts.stateDir);
    const kv: Record<string, string> = {
      'swarm-ca.pem': swarmCA.certPem, 'swarm-ca-key.pem': swarmCA.keyPem,
      'data.key': readFileSync(keyPath(this.opts.stateDir)).toString('base64'),
    };
    if (etcdCA) Object.assign(kv, { 'etcd-ca.pem': etcdCA.certPem, 'etcd-ca-key.pem': etcdCA.keyPem });
    for (const [k, v] of Object.entries(kv)) await this.client.put(SECRETS + k).value(v);
  }

  private async getSecrets(): Promise<{ swarmCA: RootCA; etcdCA?: RootCA }> {
    const all = await this.client.getAll().prefix(SECRETS).strings();
    const get = (k: string) => all[SECRETS + k];
    if (!get('swarm-ca.pem') || !get('swarm-ca-key.pem')) throw unavailable('the swarm CA is missing from etcd');
    const etcdCA = get('etcd-ca.pem') && get('etcd-ca-key.pem') ? { certPem: get('etcd-ca.pem'), keyPem: get('etcd-ca-key.pem') } : undefined;
    if (get('data.key')) {
      const p = keyPath(this.opts.stateDir);
      mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
      writeFileSync(p, Buffer.from(get('data.key')!, 'base64'), { mode: 0o600 });
    }
    return { swarmCA: { certPem: get('swarm-ca.pem'), keyPem: get('swarm-ca-key.pem') }, etcdCA };
  }

  /** campaigns for leadership; callbacks as LeaderElection's */
  startElection(h: { onElected(fence: Fence): void; onDeposed(reason: string): void; onLeaderChange?(leader: string | undefined): void }): void {
    this.election ??= new LeaderElection(this.client, { nodeId: this.opts.nodeId, ...h });
    this.election.start();
  }

  /** resigns and stops campaigning (a demoted manager) */
  async stopElection(): Promise<void> {
    await this.election?.stop();
  }

  /** node id of the leader as observed, undefined when unknown */
  leader(): string | undefined { return this.election?.leader(); }
  isLeader(): boolean { return !!this.election?.isLeader(); }

  /** member health (a status call to each member); external clusters have no members of ours */
  async members(): Promise<MemberStatus[]> {
    if (!this.member) return [];
    this.lastMembers = await listMembers(this.client, this.tls);
    return this.lastMembers;
  }

  /** the last member list members() saw (for checks that cannot wait) */
  cachedMembers(): MemberStatus[] { return this.lastMembers; }

  /** on an existing manager: adds the joiner as a member and certifies it */
  async addManager(nodeId: string, ip: string): Promise<EtcdJoinInfo | undefined> {
    if (!this.member) return undefined;
    const etcdCA = readCA(join(this.opts.stateDir, 'etcd-ca'));
    const cert = await issueEtcdCert(etcdCA, nodeId, [ip]);
    const { initialCluster } = await addMember(this.client, nodeId, `https://${ip}:${ETCD_PEER_PORT}`);
    const list = await this.client.cluster.memberList({ linearizable: false });
    const clientURLs = list.members.flatMap((m) => m.clientURLs);
    log.info({ nodeId, ip }, 'etcd member added for a joining manager');
    return { initialCluster, clusterToken: this.store.list('cluster')[0]?.ID ?? this.opts.clusterId, cert, clientURLs };
  }

  /** removes a manager's member (demote, node rm, leave); false when it is not a member */
  async removeManager(nodeId: string): Promise<boolean> {
    if (!this.member) return false;
    const m = await findMember(this.client, nodeId);
    if (!m) return false;
    await removeMember(this.client, m.ID);
    log.info({ nodeId }, 'etcd member removed');
    return true;
  }

  /** whether `nodeId` is still an etcd member, asked of our member or, when it is gone (removed), of these peer IPs */
  async isMember(nodeId: string, peerIPs: string[]): Promise<boolean> {
    try {
      return !!(await findMember(this.client, nodeId));
    } catch {
      if (!peerIPs.length || !this.tls) throw new Error('no etcd member to ask');
      const c = etcdClient({ endpoints: peerIPs.map((ip) => `https://${ip}:${ETCD_CLIENT_PORT}`), tls: this.tls, callTimeoutMs: 2_000 });
      try { return !!(await findMember(c, nodeId)); } finally { c.close(); }
    }
  }

  /** stops election, store and client; the member is stopped (kept on disk) unless `destroy` */
  async close(opts: { destroy?: boolean } = {}): Promise<void> {
    clearInterval(this.probe);
    await this.election?.stop().catch((err) => log.warn({ err: errorMessage(err) }, 'election stop failed'));
    await this.store.close().catch(() => undefined);
    this.client.close();
    if (opts.destroy) await this.member?.destroy();
    else await this.member?.stop();
  }
}

function writeCA(dir: string, ca: RootCA): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  writeFileSync(join(dir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
}

function readCA(dir: string): RootCA {
  if (!existsSync(join(dir, 'ca-key.pem'))) throw unavailable(`this manager has no etcd CA under ${dir}`);
  return { certPem: readFileSync(join(dir, 'ca.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'ca-key.pem'), 'utf8') };
}
