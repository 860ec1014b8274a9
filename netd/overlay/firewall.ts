// Owns the packet filter around overlay bridges, in this process's namespace:
// - iptables filter chain SHOAL-OVERLAY (jumped to first from FORWARD): lets
//   bridged and egress traffic of each overlay bridge through even where
//   dockerd has set the FORWARD policy to DROP;
// - nftables table inet shoal_overlay: drops routing between two overlay
//   bridges (networks are isolated) and masquerades overlay subnets leaving
//   through non-overlay interfaces.
// sync() makes both match the given set of networks (none: everything removed).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sbin } from './bin.js';

const run = promisify(execFile);
export const IPT_CHAIN = 'SHOAL-OVERLAY';
export const NFT_TABLE = 'shoal_overlay';
const BRIDGE_GLOB = 'shb+';

export interface FirewallNetwork { bridge: string; subnet: string }

async function ipt(args: string[]): Promise<boolean> {
  try {
    await run(sbin('iptables'), ['-w', '5', ...args], { timeout: 15_000 });
    return true;
  } catch {
    return false;
  }
}

function bridgeRules(bridge: string): string[][] {
  return [
    ['-i', bridge, '-o', bridge, '-j', 'ACCEPT'],
    ['-i', bridge, '!', '-o', BRIDGE_GLOB, '-j', 'ACCEPT'],
    ['-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
  ];
}

async function syncIptables(nets: FirewallNetwork[]): Promise<void> {
  if (nets.length === 0) {
    while (await ipt(['-D', 'FORWARD', '-j', IPT_CHAIN]));
    await ipt(['-F', IPT_CHAIN]);
    await ipt(['-X', IPT_CHAIN]);
    return;
  }
  if (!(await ipt(['-S', IPT_CHAIN]))) await ipt(['-N', IPT_CHAIN]);
  if (!(await ipt(['-C', 'FORWARD', '-j', IPT_CHAIN]))) {
    if (!(await ipt(['-I', 'FORWARD', '1', '-j', IPT_CHAIN]))) throw new Error(`iptables: cannot hook ${IPT_CHAIN} into FORWARD`);
  }
  const wanted = new Set(nets.map((n) => n.bridge));
  for (const b of wanted) {
    for (const r of bridgeRules(b)) {
      if (!(await ipt(['-C', IPT_CHAIN, ...r])) && !(await ipt(['-A', IPT_CHAIN, ...r]))) {
        throw new Error(`iptables: cannot add rule ${r.join(' ')}`);
      }
    }
  }
  // drop rules of bridges that are gone (our rules have no quoted arguments)
  const { stdout } = await run(sbin('iptables'), ['-w', '5', '-S', IPT_CHAIN]);
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(`-A ${IPT_CHAIN} `)) continue;
    const bridges = line.match(/shb\d+/g) ?? [];
    if (bridges.some((b) => !wanted.has(b))) await ipt(['-D', ...line.split(' ').slice(1)]);
  }
}

/** The nft script that replaces table inet shoal_overlay atomically. */
export function nftScript(nets: FirewallNetwork[]): string {
  const fwd = nets.map((n) => `    iifname "${n.bridge}" oifname "shb*" oifname != "${n.bridge}" drop`);
  const nat = nets.map((n) => `    ip saddr ${n.subnet} ip daddr != ${n.subnet} oifname != "shb*" masquerade`);
  return [
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    ...fwd,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    ...nat,
    '  }',
    '}',
    '',
  ].join('\n');
}

async function nft(script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile(sbin('nft'), ['-f', '-'], { timeout: 15_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`nft: ${stderr || err.message}`)) : resolve());
    child.stdin!.on('error', () => undefined); // an early exit is reported by the callback
    child.stdin!.end(script);
  });
}

async function syncNft(nets: FirewallNetwork[]): Promise<void> {
  if (nets.length === 0) {
    await nft(`table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\n`);
    return;
  }
  await nft(nftScript(nets));
}

export async function syncFirewall(nets: FirewallNetwork[]): Promise<void> {
  const sorted = [...nets].sort((a, b) => a.bridge.localeCompare(b.bridge));
  await syncNft(sorted);
  await syncIptables(sorted);
}
