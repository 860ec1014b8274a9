// Small helpers for the networking benchmarks: commands in a lab host or in a
// container's network namespace with their output, percentiles, and a
// cleanup that runs on errors and on Ctrl-C.
import { execFile } from 'node:child_process';

export function sh(argv: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 256 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`${argv.join(' ')}: ${stderr || err.message}`)) : resolve(out));
  });
}
export const inHost = (ns: string, argv: string[], timeoutMs?: number) => sh(['/usr/sbin/ip', 'netns', 'exec', ns, ...argv], timeoutMs);
export const inPid = (pid: number, argv: string[], timeoutMs?: number) => sh(['/usr/bin/nsenter', '-t', String(pid), '-n', ...argv], timeoutMs);

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** runs main, then cleanup — also when main throws or the process is interrupted */
export async function withCleanup(main: () => Promise<void>, cleanup: () => Promise<void>): Promise<void> {
  let cleaning: Promise<void> | undefined;
  const clean = () => (cleaning ??= cleanup().catch((err) => console.error('cleanup failed:', err)));
  const onSignal = () => { void clean().then(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await main();
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  } finally {
    await clean();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
