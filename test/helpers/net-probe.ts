// Reachability probe for benchmarks, run inside a lab host (`ip netns exec HOST
// node net-probe.js PORT TIMEOUT_MS ADDR...`): TCP connects to every ADDR:PORT
// every few ms until one of them answers or the deadline passes, then prints
// {"started":ms,"reached":{"ADDR":ms|null}} (epoch ms). Several candidate
// addresses let a probe run before the address of a new task is known.
import net from 'node:net';

const [port = '80', timeout = '10000', ...addrs] = process.argv.slice(2);
const started = Date.now();
const deadline = started + Number(timeout);

function attempt(addr: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: addr, port: Number(port) });
    const done = (ok: boolean) => { clearTimeout(t); s.destroy(); resolve(ok); };
    const t = setTimeout(() => done(false), 100);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

let anyReached = false;
async function probe(addr: string): Promise<number | null> {
  while (Date.now() < deadline && !anyReached) {
    if (await attempt(addr)) { anyReached = true; return Date.now(); }
    await new Promise((r) => setTimeout(r, 5));
  }
  return null;
}

const results = await Promise.all(addrs.map(async (a) => [a, await probe(a)] as const));
console.log(JSON.stringify({ started, reached: Object.fromEntries(results) }));
