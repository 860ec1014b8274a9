// Owns the out-of-process overlay driver: `node dist/netd/overlay/serve.js`
// runs one OverlayDriver in its own process (and so in the network namespace
// it was started in, e.g. under `ip netns exec HOST`), answering JSON lines on
// stdin/stdout: {"id":1,"method":"attach","params":[{...}]} ->
// {"id":1,"result":{...}} or {"id":1,"error":{"code":"not-found","message":"..."}}.
// Keeping netlink in its own process also shields a caller from the native
// addon aborting on a receive-buffer overflow. Exits when stdin closes.
import { createInterface } from 'node:readline';
import { ShoalError, errorMessage } from '../../agent/common/errors.js';
import { OverlayDriver } from './driver.js';

export const METHODS = ['ensureNetwork', 'removeNetwork', 'attach', 'detach', 'setPeers', 'peers', 'networks'] as const;
export type Method = (typeof METHODS)[number];

const driver = new OverlayDriver();
const send = (msg: unknown) => process.stdout.write(JSON.stringify(msg) + '\n');

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req: { id: number; method: Method; params?: unknown[] };
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  if (!METHODS.includes(req.method)) {
    send({ id: req.id, error: { code: 'invalid', message: `unknown method ${String(req.method)}` } });
    return;
  }
  const fn = driver[req.method] as (...a: unknown[]) => Promise<unknown>;
  fn.apply(driver, req.params ?? []).then(
    (result) => send({ id: req.id, result: result ?? null }),
    (err: unknown) => send({ id: req.id, error: { code: err instanceof ShoalError ? err.code : 'internal', message: errorMessage(err) } }),
  );
});
rl.on('close', () => {
  void driver.close().finally(() => process.exit(0));
});
send({ ready: true, pid: process.pid });
