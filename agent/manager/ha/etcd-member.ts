// Owns the local etcd member a manager runs: its command line (data dir under
// the state dir, client and peer URLs, peer and client TLS from the swarm CA),
// starting it as a new single-member cluster or as a joiner of an existing
// one (or, once, as a one-member cluster from its data: --force-new-cluster),
// waiting until it answers, restarting it when it crashes (with backoff)
// and stopping it when the manager leaves. A member left running by a
// previous agent (kill -9 of the agent) is found by its pid file and ended
// before a new one starts on the same data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { etcdClient } from '../store/etcd.js';
import type { EtcdCert } from './etcd-certs.js';

const log = logger('etcd-member');

export interface EtcdMemberOptions {
  /** member name: the node id */
  name: string;
  /** <stateDir>/etcd: data/, tls/, etcd.log, etcd.pid */
  dir: string;
  /** host:port the member serves clients on */
  clientAddr: string;
  /** host:port the member talks to its peers on */
  peerAddr: string;
  /** peer and client TLS (mutual); plain http without */
  tls?: EtcdCert;
  clusterToken?: string;
  etcdBin?: string;
  /** raft timing; etcd's defaults are 100 / 1000 ms */
  heartbeatMs?: number;
  electionMs?: number;
  readyTimeoutMs?: number;
}

type Mode = { state: 'new'; initialCluster: string } | { state: 'existing'; initialCluster: string } | { state: 'restart'; forceNewCluster?: boolean };

export class EtcdMember {
  readonly clientURL: string;
  readonly peerURL: string;
  private child: ChildProcess | undefined;
  private mode: Mode | undefined;
  private stopping = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(readonly opts: EtcdMemberOptions) {
    const scheme = opts.tls ? 'https' : 'http';
    this.clientURL = `${scheme}://${opts.clientAddr}`;
    this.peerURL = `${scheme}://${opts.peerAddr}`;
  }

  get dataDir(): string { return join(this.opts.dir, 'data'); }
  get pid(): number | undefined { return this.child?.exitCode === null ? this.child.pid : undefined; }
  /** true when a previous start left member data: start() restarts it */
  initialized(): boolean { return existsSync(join(this.dataDir, 'member')); }
  /** how many times the supervisor restarted a crashed member */
  get restartCount(): number { return this.restarts; }

  /** starts a new single-member cluster */
  initCluster(): Promise<void> {
    return this.launch({ state: 'new', initialCluster: `${this.opts.name}=${this.peerURL}` });
  }

  /** starts as a member already added (addMember) to an existing cluster */
  joinCluster(initialCluster: string): Promise<void> {
    return this.launch({ state: 'existing', initialCluster });
  }

  /** restarts a member from its data dir (agent restart) */
  start(): Promise<void> {
    if (!this.initialized()) throw new Error(`no etcd member data under ${this.dataDir}`);
    return this.launch({ state: 'restart' });
  }

  /**
   * restarts a member from its data dir as a one-member cluster (etcd's --force-new-cluster: the data is
   * kept, every other member is dropped); a later restart is an ordinary one
   */
  forceNewCluster(): Promise<void> {
    if (!this.initialized()) throw new Error(`no etcd member data under ${this.dataDir}`);
    return this.launch({ state: 'restart', forceNewCluster: true });
  }

  /** an etcd client talking to this member only */
  client(): Etcd3 {
    return etcdClient({ endpoints: [this.clientURL], tls: this.opts.tls, callTimeoutMs: 2_000 });
  }

  /** stops the member (SIGTERM, then SIGKILL after 5 s) and its supervision */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
    rmSync(join(this.opts.dir, 'etcd.pid'), { force: true });
  }

  /** kills the member with SIGKILL and does not restart it (a host that died) */
  async kill(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await exited;
  }

  /** stops the member and deletes its data (the manager left the cluster) */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.opts.dir, { recursive: true, force: true });
  }

  private async launch(mode: Mode): Promise<void> {
    this.mode = mode;
    this.stopping = false;
    mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
    this.writeTLS();
    await this.endStale();
    this.spawnOnce();
    await this.waitReady();
  }

  private args(): string[] {
    const o = this.opts;
    const tlsDir = join(o.dir, 'tls');
    const a = [
      '--name', o.name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.clientURL,
      '--advertise-client-urls', this.clientURL,
      '--listen-peer-urls', this.peerURL,
      '--initial-advertise-peer-urls', this.peerURL,
      '--initial-cluster-token', o.clusterToken ?? 'shoal',
      '--heartbeat-interval', String(o.heartbeatMs ?? 100),
      '--election-timeout', String(o.electionMs ?? 1000),
      // a member back from a partition must not depose a healthy Raft leader (and with it our lease holder)
      '--pre-vote',
      // swarm transactions can touch many objects (a service's tasks)
      '--max-txn-ops', '16384',
      '--max-request-bytes', String(16 * 1024 * 1024),
      '--auto-compaction-mode', 'revision',
      '--auto-compaction-retention', '100000',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ];
    if (this.mode && this.mode.state !== 'restart') {
      a.push('--initial-cluster', this.mode.initialCluster, '--initial-cluster-state', this.mode.state);
    }
    if (this.mode?.state === 'restart' && this.mode.forceNewCluster) a.push('--force-new-cluster');
    if (o.tls) {
      const ca = join(tlsDir, 'ca.pem'), cert = join(tlsDir, 'member.pem'), key = join(tlsDir, 'member-key.pem');
      a.push('--client-cert-auth', '--trusted-ca-file', ca, '--cert-file', cert, '--key-file', key,
        '--peer-client-cert-auth', '--peer-trusted-ca-file', ca, '--peer-cert-file', cert, '--peer-key-file', key);
    }
    return a;
  }

  private writeTLS(): void {
    const t = this.opts.tls;
    if (!t) return;
    const dir = join(this.opts.dir, 'tls');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'ca.pem'), t.caPem);
    writeFileSync(join(dir, 'member.pem'), t.certPem);
    writeFileSync(join(dir, 'member-key.pem'), t.keyPem, { mode: 0o600 });
  }

  /** ends an etcd a previous agent left running on this data dir */
  private async endStale(): Promise<void> {
    const pidFile = join(this.opts.dir, 'etcd.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd.includes(this.dataDir)) {
        log.warn({ pid }, 'ending an etcd member left running by a previous agent');
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
      }
    } catch { /* gone already */ }
    rmSync(pidFile, { force: true });
  }

  private spawnOnce(): void {
    const logFd = openSync(join(this.opts.dir, 'etcd.log'), 'a');
    const child = spawn(this.opts.etcdBin ?? 'etcd', this.args(), { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    this.child = child;
    if (child.pid) writeFileSync(join(this.opts.dir, 'etcd.pid'), String(child.pid));
    child.on('error', (err) => log.error({ err: errorMessage(err) }, 'etcd could not start'));
    child.on('exit', (code, signal) => {
      if (this.child !== child || this.stopping) return;
      this.restarts++;
      const delay = Math.min(10_000, 250 * 2 ** Math.min(this.restarts, 6));
      log.warn({ code, signal, delay }, 'etcd member exited; restarting');
      // after a first start, the data dir holds the membership: restart from it
      if (this.initialized()) this.mode = { state: 'restart' };
      this.restartTimer = setTimeout(() => { if (!this.stopping) this.spawnOnce(); }, delay);
    });
  }

  private async waitReady(): Promise<void> {
    try {
      await this.waitReadyOnce();
    } finally {
      // --force-new-cluster once: a crash after it restarts the member as it now is
      if (this.mode?.state === 'restart') this.mode = { state: 'restart' };
    }
  }

  private async waitReadyOnce(): Promise<void> {
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 30_000);
    for (;;) {
      // a fresh client each try: a failed one keeps its circuit open for seconds
      const c = this.client();
      try {
        await c.maintenance.status();
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          const tail = readFileSync(join(this.opts.dir, 'etcd.log'), 'utf8').split('\n').slice(-5).join('\n');
          throw new Error(`etcd member ${this.opts.name} did not become ready at ${this.clientURL}: ${errorMessage(err)}; etcd.log ends:\n${tail}`);
        }
      } finally {
        c.close();
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
