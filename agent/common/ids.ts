// Owns object identifiers: 25-character lowercase base-36 ids, as swarmkit makes them.
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

export function newId(): string {
  const bytes = randomBytes(25);
  let id = '';
  for (const b of bytes) id += ALPHABET[b % 36];
  // ids never start with a digit-only prefix that could look like a number
  return /^[0-9]/.test(id) ? ALPHABET[10 + (bytes[0] % 26)] + id.slice(1) : id;
}

export function nowIso(): string {
  return new Date().toISOString();
}
