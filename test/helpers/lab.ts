// Owns the test-side handle on deploy/lab/lab.sh: a lab of N host namespaces
// with a unique prefix per call, commands run inside a host, and teardown.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** system tools first: under npm, node_modules/.bin shadows e.g. `nft` (@vercel/nft) */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const LAB_SH = fileURLToPath(new URL('../../../deploy/lab/lab.sh', import.meta.url));

export interface LabHost { name: string; addr: string }
export interface Lab {
  prefix: string;
  hosts: LabHost[];
  /** runs argv inside the host's namespace (`ip netns exec`, system PATH); rejects on non-zero exit */
  exec(host: string | LabHost, cmd: string[], opts?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  destroy(): Promise<void>;
}

/** A fresh, short, unique lab prefix: "l" + 5 base-36 characters. */
export function labPrefix(): string {
  return 'l' + [...randomBytes(5)].map((b) => (b % 36).toString(36)).join('');
}

export async function createLab(n: number, prefix = labPrefix()): Promise<Lab> {
  const env = { ...process.env, LAB_OWNER_PID: String(process.pid) };
  let out: string;
  try {
    ({ stdout: out } = await run(LAB_SH, ['up', String(n), prefix], { env, timeout: 60_000 }));
  } catch (err) {
    await run(LAB_SH, ['down', prefix]).catch(() => undefined);
    throw err;
  }
  const hosts = out.trim().split('\n').map((line) => {
    const [name, addr] = line.split(' ');
    return { name: name!, addr: addr! };
  });
  let destroyed = false;
  return {
    prefix,
    hosts,
    exec: (host, cmd, opts = {}) => {
      const name = typeof host === 'string' ? host : host.name;
      return run('/usr/sbin/ip', ['netns', 'exec', name, ...cmd], {
        timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20, env: { ...process.env, PATH: SYSTEM_PATH },
      });
    },
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await run(LAB_SH, ['down', prefix], { timeout: 60_000 });
    },
  };
}
