// Owns what `--store` means, without loading etcd: the store modes, the flag's
// parsing, and whether this host can run an etcd member. The etcd plane
// itself (plane.ts, with the etcd3 client and certificate code) is loaded
// only when a manager actually uses etcd.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { invalid } from '../../common/errors.js';
import type { EtcdTLS } from '../store/etcd.js';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const ETCD_PACKAGE_HINT = 'etcd is not installed on this host (Debian package `etcd-server`, binary /usr/bin/etcd)';

/** what `--store` asked for */
export type StoreMode = { kind: 'embedded' } | { kind: 'etcd' } | { kind: 'external'; endpoints: string[]; tls?: EtcdTLS };

export function parseStoreFlag(v: string | undefined): StoreMode {
  if (!v || v === 'embedded') return { kind: 'embedded' };
  if (v === 'etcd') return { kind: 'etcd' };
  if (v.startsWith('etcd://')) {
    const endpoints = v.slice('etcd://'.length).split(',').filter(Boolean).map((h) => `http://${h}`);
    if (!endpoints.length) throw invalid('--store etcd:// needs at least one host:port');
    return { kind: 'external', endpoints };
  }
  throw invalid(`--store must be embedded, etcd or etcd://host:port[,…]; got ${v}`);
}

export function etcdInstalled(bin = 'etcd'): boolean {
  if (bin.includes('/')) return existsSync(bin);
  return (process.env.PATH ?? '/usr/bin').split(':').some((d) => existsSync(join(d, bin)));
}
