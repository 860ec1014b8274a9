// Owns joining a swarm from the node's side: fetch the manager's CA, pin it
// by the token's digest, make a key pair, prove the token, keep the
// certificate. The private key never leaves this node.
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { invalid } from '../common/errors.js';
import type { JoinRequest, JoinResponse } from '../common/protocol.js';
import type { NodeDescription } from '../common/types.js';
import { caDigest, newNodeKey } from '../manager/ca/ca.js';
import { digestPart, parseToken } from '../manager/ca/tokens.js';
import { PATHS } from '../common/protocol.js';
import { call, RemoteError, tlsAgent, type NodeTls } from './cluster-client.js';

export async function joinSwarm(opts: { remote: string; token: string; hostname: string; advertiseAddr: string; description: NodeDescription; availability?: JoinRequest['availability']; canRunEtcd?: boolean }): Promise<{ res: JoinResponse; keyPem: string }> {
  const { digest } = parseToken(opts.token);
  const bare = tlsAgent({});
  let caPem: string;
  try {
    caPem = await call<string>(bare, opts.remote, 'GET', PATHS.ca, undefined, 5000);
  } catch (err) {
    throw invalid(`could not reach the manager at ${opts.remote}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    bare.destroy();
  }
  if (digestPart(caDigest(caPem)) !== digest) throw invalid('remote CA does not match fingerprint in join token');
  const { keyPem, publicKey } = await newNodeKey();
  const pinned = tlsAgent({ caPem });
  try {
    const res = await call<JoinResponse>(pinned, opts.remote, 'POST', PATHS.join, {
      token: opts.token, hostname: opts.hostname, advertiseAddr: opts.advertiseAddr, publicKey, description: opts.description, availability: opts.availability, canRunEtcd: opts.canRunEtcd,
    } satisfies JoinRequest);
    return { res, keyPem };
  } catch (err) {
    if (err instanceof RemoteError) throw invalid(err.message);
    throw err;
  } finally {
    pinned.destroy();
  }
}

export function saveCerts(stateDir: string, tls: Required<NodeTls>): void {
  const dir = join(stateDir, 'certs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'node-key.pem'), tls.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'node.pem'), tls.certPem);
  writeFileSync(join(dir, 'ca.pem'), tls.caPem);
}

export function loadCerts(stateDir: string): Required<NodeTls> | undefined {
  const dir = join(stateDir, 'certs');
  if (!existsSync(join(dir, 'node.pem'))) return undefined;
  return { keyPem: readFileSync(join(dir, 'node-key.pem'), 'utf8'), certPem: readFileSync(join(dir, 'node.pem'), 'utf8'), caPem: readFileSync(join(dir, 'ca.pem'), 'utf8') };
}
