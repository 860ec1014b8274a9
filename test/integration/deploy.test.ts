// deploy/ is usable as shipped: every shell script is shellcheck-clean, the
// systemd unit passes `systemd-analyze verify`, install.sh is idempotent (dry
// run and a real install staged under --destdir, twice), the Prometheus
// configuration and alerting rules pass promtool (alerts fire in promtool's
// rule tests), and the Grafana dashboard is well-formed.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, statSync, readlinkSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const INSTALL = join(DEPLOY, 'install.sh');
const UNIT = join(DEPLOY, 'systemd', 'shoal-agent.service');
/** system tools first: under npm, node_modules/.bin shadows names */
const ENV = { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

interface Result { code: number; stdout: string; stderr: string }
function sh(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd ?? ROOT, env: ENV, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function tempDir(t: { teardown(fn: () => void): void }, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `shoal-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function shellScripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return shellScripts(p);
    return e.name.endsWith('.sh') ? [p] : [];
  });
}

/** every file under dir, relative, with size and mode (what a second install must not change) */
function tree(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return [`${p.slice(base.length)}/`, ...tree(p, base)];
    if (e.isSymbolicLink()) return [`${p.slice(base.length)} -> ${readlinkSync(p)}`];
    const st = statSync(p);
    return [`${p.slice(base.length)} ${st.size} ${(st.mode & 0o777).toString(8)}`];
  }).sort();
}

test('every deploy script and .ci/run is shellcheck-clean; the install scripts also in style', async (t) => {
  const scripts = [...shellScripts(DEPLOY), join(ROOT, '.ci', 'run')];
  t.true(scripts.includes(INSTALL));
  // warnings and errors fail everywhere (other scripts may keep info-level notes)
  const all = await sh('shellcheck', ['--severity=warning', ...scripts]);
  t.is(all.code, 0, all.stdout + all.stderr);
  const mine = await sh('shellcheck', [INSTALL, join(DEPLOY, 'prometheus', 'targets.sh')]);
  t.is(mine.code, 0, mine.stdout + mine.stderr);
});

test('the systemd unit passes systemd-analyze verify, and so does the one install.sh writes', async (t) => {
  const verify = async (unit: string) => {
    const r = await sh('systemd-analyze', ['verify', unit]);
    t.is(r.code, 0, r.stdout + r.stderr);
    t.notRegex(r.stdout + r.stderr, /shoal-agent/, r.stdout + r.stderr);
  };
  await verify(UNIT);
  const text = readFileSync(UNIT, 'utf8');
  for (const line of ['KillMode=process', 'Restart=on-failure', 'StateDirectory=shoal', 'RuntimeDirectory=shoal']) t.true(text.includes(`\n${line}\n`), line);
  t.regex(text, /^After=.*docker\.service/m);
  t.regex(text, /^Wants=.*network-online\.target/m);
  t.regex(text, /^LimitNOFILE=\d+/m);
  // a broken unit is caught, so the check above means something
  const dest = tempDir(t, 'unit');
  writeFileSync(join(dest, 'broken.service'), text.replace('ExecStart=/usr/bin/node', 'ExecStart=/nonexistent/node'));
  t.not((await sh('systemd-analyze', ['verify', join(dest, 'broken.service')])).code, 0);
  const r = await sh(INSTALL, ['--skip-setup', '--destdir', dest, '--prefix', '/srv/shoal']);
  t.is(r.code, 0, r.stdout + r.stderr);
  const installed = join(dest, 'etc', 'systemd', 'system', 'shoal-agent.service');
  t.regex(readFileSync(installed, 'utf8'), new RegExp(`^ExecStart=${process.execPath} /srv/shoal/dist/agent/cli/main\\.js agent `, 'm'));
  await verify(installed);
});

test('install.sh --dry-run prints the plan, changes nothing and says the same twice', async (t) => {
  const first = await sh(INSTALL, ['--dry-run']);
  t.is(first.code, 0, first.stderr);
  const second = await sh(INSTALL, ['--dry-run']);
  t.is(second.code, 0, second.stderr);
  t.is(second.stdout, first.stdout);
  t.regex(first.stdout, /^\+ .*deploy\/setup\.sh$/m);
  t.regex(first.stdout, /shoal-agent\.service/);
  // no systemd as PID 1 in CI: the script says what to do instead of failing
  if (!existsSync('/run/systemd/system')) t.regex(first.stdout, /systemd is not running/);
  const dest = tempDir(t, 'dry');
  const staged = await sh(INSTALL, ['--dry-run', '--skip-setup', '--destdir', dest]);
  t.is(staged.code, 0, staged.stderr);
  t.deepEqual(readdirSync(dest), []);
});

test('install.sh into a staging root is idempotent and the installed CLI runs', async (t) => {
  const dest = tempDir(t, 'install');
  const first = await sh(INSTALL, ['--skip-setup', '--destdir', dest], { timeoutMs: 120_000 });
  t.is(first.code, 0, first.stdout + first.stderr);
  t.regex(first.stdout, /wrote .*shoal-agent\.service/);
  const prefix = join(dest, 'opt', 'shoal');
  t.is(readlinkSync(join(dest, 'usr', 'local', 'bin', 'shoal')), '/opt/shoal/dist/agent/cli/main.js');
  t.is(statSync(join(prefix, 'dist', 'agent', 'cli', 'main.js')).mode & 0o111, 0o111);
  t.false(existsSync(join(prefix, 'test')), 'sources and tests stay in the checkout');
  const version = await sh(join(prefix, 'dist', 'agent', 'cli', 'main.js'), ['--version']);
  t.is(version.code, 0, version.stderr);
  t.is(version.stdout.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  // the operator's settings survive a second run; nothing else changes
  const defaults = join(dest, 'etc', 'default', 'shoal-agent');
  writeFileSync(defaults, 'SHOAL_AGENT_OPTS="--advertise-addr 192.0.2.1"\n');
  // (dist and node_modules are copied afresh; the checkout's build may move under us)
  const stable = () => tree(dest).filter((l) => !/^\/opt\/shoal\/(dist|node_modules)\//.test(l));
  const before = stable();
  const second = await sh(INSTALL, ['--skip-setup', '--destdir', dest], { timeoutMs: 120_000 });
  t.is(second.code, 0, second.stdout + second.stderr);
  t.regex(second.stdout, /shoal-agent\.service is up to date/);
  t.regex(second.stdout, /keeping .*shoal-agent/);
  t.deepEqual(stable(), before);
  t.deepEqual(readdirSync(join(dest, 'opt')), ['shoal'], 'no staging copies left behind');
  t.is(readFileSync(defaults, 'utf8'), 'SHOAL_AGENT_OPTS="--advertise-addr 192.0.2.1"\n');
});

test('install.sh refuses to replace a directory that is not a shoal install', async (t) => {
  const dest = tempDir(t, 'refuse');
  mkdirSync(join(dest, 'srv', 'data'), { recursive: true });
  writeFileSync(join(dest, 'srv', 'data', 'precious'), 'x');
  const r = await sh(INSTALL, ['--skip-setup', '--destdir', dest, '--prefix', '/srv/data']);
  t.not(r.code, 0);
  t.regex(r.stderr, /not a shoal install/);
  t.is(readFileSync(join(dest, 'srv', 'data', 'precious'), 'utf8'), 'x');
  t.not((await sh(INSTALL, ['--bogus'])).code, 0);
});

test('promtool accepts the Prometheus configuration and the alerting rules, and the alerts fire in its rule tests', async (t) => {
  const dir = join(DEPLOY, 'prometheus');
  const config = await sh('promtool', ['check', 'config', 'prometheus.yml'], { cwd: dir });
  t.is(config.code, 0, config.stdout + config.stderr);
  t.regex(config.stdout, /SUCCESS: 1 rule files found/);
  const rules = await sh('promtool', ['check', 'rules', 'alerts.yml'], { cwd: dir });
  t.is(rules.code, 0, rules.stdout + rules.stderr);
  const tests = await sh('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir });
  t.is(tests.code, 0, tests.stdout + tests.stderr);
  const text = readFileSync(join(dir, 'alerts.yml'), 'utf8');
  for (const name of ['ShoalAgentDown', 'ShoalNodeDown', 'ShoalServiceBelowDesired', 'ShoalDNSErrors', 'ShoalMeshBackendErrors']) t.regex(text, new RegExp(`alert: ${name}\\n`));
  const targets = JSON.parse(readFileSync(join(dir, 'targets.json'), 'utf8')) as Array<{ targets: string[] }>;
  t.true(targets.flatMap((g) => g.targets).every((a) => /^[\w.-]+:9323$/.test(a)));
});

interface Panel { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: Array<{ expr: string; refId: string }> }

test('the Grafana dashboard is valid JSON with panels for nodes, tasks and desired vs running per service', (t) => {
  const dash = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'shoal-dashboard.json'), 'utf8')) as { uid: string; title: string; panels: Panel[] };
  t.truthy(dash.uid);
  const ids = dash.panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dash.panels) {
    t.true(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
    if (p.type !== 'row') t.true((p.targets ?? []).length > 0 && p.targets!.every((q) => q.expr.includes('shoal_') || q.expr.includes('up{')), p.title);
  }
  const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((q) => q.expr).join('\n');
  for (const m of ['shoal_nodes', 'shoal_tasks', 'shoal_service_tasks_desired', 'shoal_service_tasks_running']) t.true(exprs.includes(m), m);
  const perService = dash.panels.find((p) => /desired vs running/i.test(p.title) && p.type === 'timeseries');
  t.truthy(perService);
  t.deepEqual(perService!.targets!.map((q) => /shoal_service_tasks_(\w+)/.exec(q.expr)?.[1]), ['desired', 'running']);
});
