// Owns logging: one pino root logger; modules take children with a `module` field.
import { pino, type Logger } from 'pino';

export const rootLogger: Logger = pino({ level: process.env.SHOAL_LOG_LEVEL ?? 'info', base: { pid: process.pid } });

export function logger(module: string): Logger {
  return rootLogger.child({ module });
}
export type { Logger };
