// Owns logging: one pino root logger writing JSON lines to stderr (level, time, pid,
// module, and the object ids each call adds); modules take children with a
// `module` field. The level comes from SHOAL_LOG_LEVEL or `--log-level`.
import { destination, pino, type Logger, type LevelWithSilent } from 'pino';

export const LOG_LEVELS: LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** on stderr: stdout stays for command output, and a daemon's supervisor collects both */
export const rootLogger: Logger = pino({ level: process.env.SHOAL_LOG_LEVEL ?? 'info', base: { pid: process.pid } }, destination(2));

const children: Logger[] = [];

export function logger(module: string): Logger {
  const child = rootLogger.child({ module });
  children.push(child);
  return child;
}

/** changes the level of the root and of every module's logger (children copy it when made) */
export function setLogLevel(level: LevelWithSilent): void {
  rootLogger.level = level;
  for (const c of children) c.level = level;
}
export type { Logger };
