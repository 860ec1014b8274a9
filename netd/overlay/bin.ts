// Owns locating system tools by absolute path: under npm/npx, PATH starts with
// node_modules/.bin, where e.g. @vercel/nft (an ava dependency) installs a
// `nft` that is not nftables and exits 0. Never run system tools by bare name.
import { accessSync, constants } from 'node:fs';

const DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];
const cache = new Map<string, string>();

export function sbin(name: string): string {
  let p = cache.get(name);
  if (p) return p;
  p = DIRS.map((d) => `${d}/${name}`).find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }) ?? name;
  cache.set(name, p);
  return p;
}
