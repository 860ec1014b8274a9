// Owns the certificates of agent-managed etcd members: one key and one
// certificate per member, signed by the swarm's root CA, valid as server and
// client (etcd uses the same pair for peer TLS in both directions and for
// client TLS), with the member's listen IPs as IP SANs (gRPC and etcd's peer
// transport check them). Made by @peculiar/x509 on WebCrypto like ca.ts.
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { RootCA } from '../ca/ca.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface EtcdCert { certPem: string; keyPem: string; caPem: string }

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function der(pemText: string): Buffer {
  return Buffer.from(pemText.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** a member certificate for `name` (CN) valid for the given IPs and DNS names */
export async function issueEtcdCert(ca: RootCA, name: string, ips: string[], dnsNames: string[] = [], expiryDays = 365): Promise<EtcdCert> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as CryptoKeyPair;
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', der(ca.keyPem), ALG, false, ['sign']);
  const names = [
    ...ips.map((value) => ({ type: 'ip' as const, value })),
    ...['localhost', ...dnsNames].map((value) => ({ type: 'dns' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    subject: `CN=${name}, OU=swarm-etcd`,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 5 * 60_000),
    notAfter: new Date(Date.now() + expiryDays * 86_400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem') + '\n', keyPem: pem('PRIVATE KEY', keyDer), caPem: ca.certPem };
}
