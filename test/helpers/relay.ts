// A TCP relay for tests that cut a connection path (a client to etcd, say)
// without touching either end: cut(true) drops every relayed connection and
// refuses new ones, cut(false) lets them through again.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** a TCP relay that can cut and refuse connections */
export function relay(target: string): Promise<{ addr: string; cut(on: boolean): void; close(): void }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const socks = new Set<Socket>();
  let blocked = false;
  const server: Server = createServer((s) => {
    if (blocked) { s.destroy(); return; }
    const up = connect(port, host);
    socks.add(s); socks.add(up);
    s.pipe(up).pipe(s);
    const end = () => { s.destroy(); up.destroy(); socks.delete(s); socks.delete(up); };
    s.on('error', end); up.on('error', end); s.on('close', end); up.on('close', end);
  });
  return new Promise((resolve) => server.listen(0, host, () => resolve({
    addr: `${host}:${(server.address() as { port: number }).port}`,
    cut(on: boolean) { blocked = on; if (on) for (const s of socks) s.destroy(); },
    close() { blocked = true; for (const s of socks) s.destroy(); server.close(); },
  })));
}

