// Owns join tokens in Docker's shape: SWMTKN-1-<CA digest, base 36, 50
// chars>-<secret, 25 chars>. The digest pins the CA; the secret proves the role.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { invalid } from '../../common/errors.js';

const PREFIX = 'SWMTKN-1-';

function base36(buf: Buffer, width: number): string {
  return BigInt('0x' + buf.toString('hex')).toString(36).padStart(width, '0');
}

export function makeToken(caDigest: Buffer): string {
  return `${PREFIX}${base36(caDigest, 50)}-${base36(randomBytes(16), 25).slice(0, 25)}`;
}

export interface ParsedToken { digest: string; secret: string }

export function parseToken(token: string): ParsedToken {
  const m = /^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$/.exec(token.trim());
  if (!m) throw invalid('invalid join token');
  return { digest: m[1], secret: m[2] };
}

/** the digest part as it appears in tokens for this CA */
export function digestPart(caDigest: Buffer): string {
  return base36(caDigest, 50);
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
