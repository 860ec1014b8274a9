// Owns east-west VIP load balancing inside each client container: an nftables
// table `ip shoal_vip` in the container's own network namespace DNATs a
// service's VIP to its running tasks (numgen round robin), so backends see the
// real client address and the host needs no NAT. VIPs with no backend are
// refused at once instead of timing out.
import { spawn } from 'node:child_process';

export const VIP_TABLE = 'shoal_vip';

export interface VipRule { vip: string; backends: string[] }

/** the whole table as one atomic nft script (replaces any previous version) */
export function vipScript(rules: VipRule[]): string {
  const lines = [`add table ip ${VIP_TABLE}`, `delete table ip ${VIP_TABLE}`, `table ip ${VIP_TABLE} {`];
  lines.push('  chain out {', '    type nat hook output priority -100; policy accept;');
  for (const r of rules) {
    if (!r.backends.length) continue;
    if (r.backends.length === 1) lines.push(`    ip daddr ${r.vip} dnat to ${r.backends[0]}`);
    else lines.push(`    ip daddr ${r.vip} dnat to numgen inc mod ${r.backends.length} map { ${r.backends.map((b, i) => `${i} : ${b}`).join(', ')} }`);
  }
  lines.push('  }');
  const empty = rules.filter((r) => !r.backends.length).map((r) => r.vip);
  lines.push('  chain refuse {', '    type filter hook output priority 0; policy accept;');
  if (empty.length) lines.push(`    ip daddr { ${empty.join(', ')} } reject`);
  lines.push('  }', '}');
  return lines.join('\n') + '\n';
}

/** applies a script inside the network namespace of process `pid` */
export function applyInNamespace(pid: number, script: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/nsenter', ['-t', String(pid), '-n', '/usr/sbin/nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'], timeout: timeoutMs });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`nft in pid ${pid} namespace: ${err.trim() || `exit ${code}`}`))));
    child.stdin.on('error', () => undefined); // nsenter exits early when the process is gone: 'close' reports it
    child.stdin.end(script);
  });
}
