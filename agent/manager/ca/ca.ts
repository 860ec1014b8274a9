// Owns the cluster's root CA: creation at `swarm init` (ECDSA P-256, as
// swarmkit), node certificates whose organisational unit carries the role,
// and the TLSInfo that node and swarm objects show. Certificates are made by
// @peculiar/x509 on WebCrypto, never by hand.
import { webcrypto, createHash, X509Certificate } from 'node:crypto';
import type { NodeRole, TLSInfo } from '../../common/types.js';

type X509 = typeof import('@peculiar/x509');
let loaded: Promise<X509> | undefined;

/** @peculiar/x509 costs ~20 MiB of RSS: loaded only when a certificate is made or read */
function lib(): Promise<X509> {
  return (loaded ??= import('@peculiar/x509').then((m) => {
    m.cryptoProvider.set(webcrypto as unknown as Crypto);
    return m;
  }));
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface RootCA { certPem: string; keyPem: string }
export interface NodeCert { certPem: string; keyPem: string; caPem: string }

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function derOf(pemText: string): Buffer {
  return Buffer.from(pemText.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');
}

export async function createRootCA(): Promise<RootCA> {
  const x509 = await lib();
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=swarm-ca',
    notBefore: new Date(Date.now() - 5 * 60_000),
    notAfter: new Date(Date.now() + 20 * 365 * DAY),
    keys: keys as CryptoKeyPair,
    signingAlgorithm: ALG,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.BasicConstraintsExtension(true, undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as CryptoKey),
    ],
  });
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as CryptoKey);
  return { certPem: cert.toString('pem') + '\n', keyPem: pem('PRIVATE KEY', keyDer) };
}

/** a new key pair for a node; the private key never leaves the node */
export async function newNodeKey(): Promise<{ keyPem: string; publicKey: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as CryptoKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey as CryptoKey);
  return { keyPem: pem('PRIVATE KEY', keyDer), publicKey: Buffer.from(spki).toString('base64') };
}

/**
 * certifies a node's public key (SPKI, base64): CN = node id,
 * OU = swarm-manager|swarm-worker, O = cluster id
 */
export async function signNodeCert(ca: RootCA, publicKey: string, nodeId: string, role: NodeRole, clusterId: string, expiryMs = 90 * DAY): Promise<string> {
  const x509 = await lib();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', derOf(ca.keyPem), ALG, false, ['sign']);
  const pub = await webcrypto.subtle.importKey('spki', Buffer.from(publicKey, 'base64'), ALG, true, ['verify']);
  const names = [{ type: 'dns' as const, value: nodeId }, { type: 'dns' as const, value: `swarm-${role}` }];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${nodeId}, OU=swarm-${role}, O=${clusterId}`,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 5 * 60_000),
    notAfter: new Date(Date.now() + expiryMs),
    signingAlgorithm: ALG,
    publicKey: pub,
    signingKey: caKey,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  return cert.toString('pem') + '\n';
}

/** a key and certificate made on the manager itself (its own node) */
export async function issueNodeCert(ca: RootCA, nodeId: string, role: NodeRole, clusterId: string): Promise<NodeCert> {
  const { keyPem, publicKey } = await newNodeKey();
  return { certPem: await signNodeCert(ca, publicKey, nodeId, role, clusterId), keyPem, caPem: ca.certPem };
}

/** node id and role from a peer certificate's subject */
export function peerIdentity(subject: { CN?: string | string[]; OU?: string | string[] } | undefined): { nodeId: string; role: NodeRole } | undefined {
  const cn = Array.isArray(subject?.CN) ? subject!.CN[0] : subject?.CN;
  const ou = Array.isArray(subject?.OU) ? subject!.OU[0] : subject?.OU;
  if (!cn || (ou !== 'swarm-manager' && ou !== 'swarm-worker')) return undefined;
  return { nodeId: cn, role: ou === 'swarm-manager' ? 'manager' : 'worker' };
}

/** sha256 of the CA certificate's DER: what join tokens pin */
export function caDigest(certPem: string): Buffer {
  return createHash('sha256').update(derOf(certPem)).digest();
}

export async function tlsInfo(certPem: string): Promise<TLSInfo> {
  const x509 = await lib();
  const c = new X509Certificate(certPem);
  const parsed = new x509.X509Certificate(certPem);
  return {
    TrustRoot: certPem,
    CertIssuerSubject: Buffer.from(parsed.subjectName.toArrayBuffer()).toString('base64'),
    CertIssuerPublicKey: c.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}
