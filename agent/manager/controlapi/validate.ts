// Owns service-spec validation with Docker's rules and words: the JSON shape
// (what Go's decoder would refuse), dockerd's conversion checks and swarmkit's
// controlapi checks (manager/controlapi/service.go). Pure: no store access.
import { invalid } from '../../common/errors.js';
import type { ServiceSpec, UpdateConfig } from '../../common/types.js';
import { validateMeshLabels } from '../../../lb/table.js';
import { badSpec } from './errors.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function shape(cond: boolean, field: string, want: string): void {
  if (!cond) throw invalid(`invalid JSON: ${field} must be ${want}`);
}
const optObj = (v: unknown, f: string) => shape(v === undefined || v === null || isObj(v), f, 'an object');
const optStr = (v: unknown, f: string) => shape(v === undefined || v === null || typeof v === 'string', f, 'a string');
const optBool = (v: unknown, f: string) => shape(v === undefined || v === null || typeof v === 'boolean', f, 'a boolean');
const optNum = (v: unknown, f: string) => shape(v === undefined || v === null || (typeof v === 'number' && Number.isFinite(v)), f, 'a number');
const optInt = (v: unknown, f: string) => shape(v === undefined || v === null || Number.isInteger(v), f, 'an integer');
const optStrArr = (v: unknown, f: string) =>
  shape(v === undefined || v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string')), f, 'an array of strings');
const optStrMap = (v: unknown, f: string) =>
  shape(v === undefined || v === null || (isObj(v) && Object.values(v).every((x) => typeof x === 'string')), f, 'an object of strings');
const optArr = (v: unknown, f: string) => shape(v === undefined || v === null || (Array.isArray(v) && v.every(isObj)), f, 'an array of objects');

/** the body has the JSON types of a ServiceSpec; anything else is what Go's decoder would reject */
export function checkServiceShape(body: unknown): asserts body is ServiceSpec {
  shape(isObj(body), 'body', 'a ServiceSpec object');
  const s = body as Json;
  optStr(s.Name, 'Name');
  optStrMap(s.Labels, 'Labels');
  optObj(s.TaskTemplate, 'TaskTemplate');
  const tt = (s.TaskTemplate ?? {}) as Json;
  optObj(tt.ContainerSpec, 'TaskTemplate.ContainerSpec');
  const cs = (tt.ContainerSpec ?? {}) as Json;
  optStr(cs.Image, 'ContainerSpec.Image');
  for (const f of ['Command', 'Args', 'Env', 'Groups', 'Hosts', 'CapabilityAdd', 'CapabilityDrop']) optStrArr(cs[f], `ContainerSpec.${f}`);
  for (const f of ['Hostname', 'Dir', 'User', 'StopSignal', 'Isolation']) optStr(cs[f], `ContainerSpec.${f}`);
  for (const f of ['TTY', 'OpenStdin', 'ReadOnly', 'Init']) optBool(cs[f], `ContainerSpec.${f}`);
  optStrMap(cs.Labels, 'ContainerSpec.Labels');
  optInt(cs.StopGracePeriod, 'ContainerSpec.StopGracePeriod');
  optArr(cs.Mounts, 'ContainerSpec.Mounts');
  optObj(cs.HealthCheck, 'ContainerSpec.HealthCheck');
  optObj(tt.Resources, 'TaskTemplate.Resources');
  for (const k of ['Limits', 'Reservations']) {
    const r = ((tt.Resources ?? {}) as Json)[k];
    optObj(r, `Resources.${k}`);
    for (const f of ['NanoCPUs', 'MemoryBytes', 'Pids']) optInt(((r ?? {}) as Json)[f], `Resources.${k}.${f}`);
  }
  optObj(tt.RestartPolicy, 'TaskTemplate.RestartPolicy');
  const rp = (tt.RestartPolicy ?? {}) as Json;
  optStr(rp.Condition, 'RestartPolicy.Condition');
  for (const f of ['Delay', 'MaxAttempts', 'Window']) optInt(rp[f], `RestartPolicy.${f}`);
  optObj(tt.Placement, 'TaskTemplate.Placement');
  optStrArr(((tt.Placement ?? {}) as Json).Constraints, 'Placement.Constraints');
  optArr(tt.Networks, 'TaskTemplate.Networks');
  optArr(s.Networks, 'Networks');
  optInt(tt.ForceUpdate, 'TaskTemplate.ForceUpdate');
  optStr(tt.Runtime, 'TaskTemplate.Runtime');
  optObj(s.Mode, 'Mode');
  const mode = (s.Mode ?? {}) as Json;
  for (const m of ['Replicated', 'Global', 'ReplicatedJob', 'GlobalJob']) optObj(mode[m], `Mode.${m}`);
  optInt(((mode.Replicated ?? {}) as Json).Replicas, 'Mode.Replicated.Replicas');
  for (const k of ['UpdateConfig', 'RollbackConfig']) {
    optObj(s[k], k);
    const u = (s[k] ?? {}) as Json;
    for (const f of ['Parallelism', 'Delay', 'Monitor']) optInt(u[f], `${k}.${f}`);
    optNum(u.MaxFailureRatio, `${k}.MaxFailureRatio`);
    optStr(u.FailureAction, `${k}.FailureAction`);
    optStr(u.Order, `${k}.Order`);
  }
  optObj(s.EndpointSpec, 'EndpointSpec');
  const ep = (s.EndpointSpec ?? {}) as Json;
  optStr(ep.Mode, 'EndpointSpec.Mode');
  optArr(ep.Ports, 'EndpointSpec.Ports');
  for (const p of (ep.Ports ?? []) as Json[]) {
    optInt(p.TargetPort, 'PortConfig.TargetPort');
    optInt(p.PublishedPort, 'PortConfig.PublishedPort');
    optStr(p.Protocol, 'PortConfig.Protocol');
    optStr(p.PublishMode, 'PortConfig.PublishMode');
  }
  for (const n of [...((tt.Networks ?? []) as Json[]), ...((s.Networks ?? []) as Json[])]) {
    optStr(n.Target, 'NetworkAttachmentConfig.Target');
    optStrArr(n.Aliases, 'NetworkAttachmentConfig.Aliases');
  }
  for (const m of (cs.Mounts ?? []) as Json[]) {
    optStr(m.Type, 'Mount.Type');
    optStr(m.Source, 'Mount.Source');
    optStr(m.Target, 'Mount.Target');
    optBool(m.ReadOnly, 'Mount.ReadOnly');
  }
}

const DNS_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;
// distribution/reference, simplified: [host[:port]/]path[:tag][@digest], lowercase path components
const IMAGE_REF = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$/;
const CONSTRAINT = /^\s*[^\s=!]+\s*(==|!=)\s*\S.*$/;

export function validateName(name: string | undefined): void {
  if (!name) throw badSpec('meta: name must be provided');
  if (!DNS_NAME.test(name)) throw badSpec('name must be valid as a DNS name component');
  if (name.length > 63) throw badSpec('name must be 63 characters or fewer');
}

function validateUpdateConfig(u: UpdateConfig | undefined): void {
  if (!u) return;
  if (u.FailureAction && !['pause', 'continue', 'rollback'].includes(u.FailureAction)) throw invalid(`unrecognized update failure action ${u.FailureAction}`);
  if (u.Order && !['stop-first', 'start-first'].includes(u.Order)) throw invalid(`unrecognized update order ${u.Order}`);
  if ((u.Parallelism ?? 0) < 0) throw invalid('invalid JSON: UpdateConfig.Parallelism must not be negative');
  if ((u.Delay ?? 0) < 0) throw badSpec('TaskSpec: update-delay cannot be negative');
  if ((u.Monitor ?? 0) < 0) throw badSpec('TaskSpec: update-monitor cannot be negative');
  const r = u.MaxFailureRatio ?? 0;
  if (r < 0 || r > 1) throw badSpec('TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1');
}

/** everything about a spec that can be checked without the store */
export function validateServiceSpec(spec: ServiceSpec): void {
  const modes = ['Replicated', 'Global', 'ReplicatedJob', 'GlobalJob'].filter((m) => (spec.Mode as Record<string, unknown> | undefined)?.[m] != null);
  if (modes.length > 1) throw invalid('must specify only one service mode');
  const tt = spec.TaskTemplate;
  if (!tt || !tt.ContainerSpec) throw invalid(tt?.Runtime && tt.Runtime !== 'container' ? 'unsupported runtime' : 'mismatched Runtime and *Spec fields');
  if (tt.Runtime && tt.Runtime !== 'container') throw invalid('unsupported runtime');
  const ep = spec.EndpointSpec;
  if (ep?.Mode && ep.Mode !== 'vip' && ep.Mode !== 'dnsrr') throw invalid(`invalid resolution mode: "${ep.Mode}"`);
  const rp = tt.RestartPolicy;
  if (rp?.Condition && !['none', 'on-failure', 'any'].includes(rp.Condition)) throw invalid(`invalid RestartCondition: "${rp.Condition}"`);
  if (rp?.MaxAttempts !== undefined && rp.MaxAttempts < 0) throw invalid('invalid JSON: RestartPolicy.MaxAttempts must not be negative');
  validateUpdateConfig(spec.UpdateConfig);
  validateUpdateConfig(spec.RollbackConfig);

  // swarmkit's validateServiceSpec, in its order
  validateName(spec.Name);
  // shoal's routing mesh labels (shoal.lb.mode, shoal.lb.proxy-protocol)
  const meshLabels = validateMeshLabels(spec.Labels);
  if (meshLabels !== undefined) throw badSpec(`Labels: ${meshLabels}`);
  for (const r of [tt.Resources?.Limits, tt.Resources?.Reservations]) {
    if (!r) continue;
    if (r.NanoCPUs && r.NanoCPUs < 1e6) throw badSpec(`invalid cpu value ${r.NanoCPUs / 1e9}: Must be at least 0.001`);
    if (r.MemoryBytes && r.MemoryBytes < 4 * 1024 * 1024) throw badSpec(`invalid memory value ${r.MemoryBytes}: Must be at least 4MiB`);
  }
  if ((rp?.Delay ?? 0) < 0) throw badSpec('TaskSpec: restart-delay cannot be negative');
  if ((rp?.Window ?? 0) < 0) throw badSpec('TaskSpec: restart-window cannot be negative');
  for (const c of tt.Placement?.Constraints ?? []) {
    if (!CONSTRAINT.test(c)) throw badSpec('constraint expected one operator from ==, !=');
  }
  const cs = tt.ContainerSpec;
  if (!cs.Image) throw badSpec('ContainerSpec: image reference must be provided');
  if (!IMAGE_REF.test(cs.Image)) throw badSpec(`ContainerSpec: "${cs.Image}" is not a valid repository/tag`);
  const targets = new Set<string>();
  for (const m of cs.Mounts ?? []) {
    if (!['bind', 'volume', 'tmpfs', 'npipe'].includes(m.Type)) throw invalid(`invalid MountType: "${m.Type ?? ''}"`);
    if (!m.Target) throw invalid('invalid mount config: Target must not be empty');
    if (!m.Target.startsWith('/')) throw invalid(`invalid mount config: invalid mount path: '${m.Target}' mount path must be absolute`);
    if (m.Type === 'bind' && !m.Source?.startsWith('/')) throw invalid(`invalid mount config for type "bind": invalid mount path: '${m.Source ?? ''}' mount path must be absolute`);
    if (m.Type === 'tmpfs' && m.Source) throw invalid('invalid mount config for type "tmpfs": Source must not be specified');
    if (targets.has(m.Target)) throw badSpec(`ContainerSpec: duplicate mount point: ${m.Target}`);
    targets.add(m.Target);
  }
  const hc = cs.HealthCheck;
  if (hc) {
    for (const f of ['Interval', 'Timeout', 'StartPeriod'] as const) {
      const v = hc[f];
      if (v !== undefined && v !== 0 && v < 1e6) throw badSpec(`ContainerSpec: ${f} in HealthConfig cannot be less than 1ms`);
    }
    if ((hc.Retries ?? 0) < 0) throw badSpec('ContainerSpec: Retries in HealthConfig cannot be negative');
  }
  const replicas = spec.Mode?.Replicated?.Replicas;
  if (replicas !== undefined && replicas < 0) throw badSpec('Number of replicas must be non-negative');
  const job = spec.Mode?.ReplicatedJob;
  if ((job?.MaxConcurrent ?? 0) < 0) throw badSpec('Maximum concurrent jobs must not be negative');
  if ((job?.TotalCompletions ?? 0) < 0) throw badSpec('Total completed jobs must not be negative');
  if ((spec.Mode?.ReplicatedJob || spec.Mode?.GlobalJob) && spec.UpdateConfig) throw badSpec('Jobs may not have an update config');

  const seen = new Set<string>();
  for (const p of ep?.Ports ?? []) {
    if (!Number.isInteger(p.TargetPort) || p.TargetPort < 1 || p.TargetPort > 65535) throw invalid(`invalid JSON: PortConfig.TargetPort ${p.TargetPort} out of range`);
    if (p.PublishedPort !== undefined && (p.PublishedPort < 0 || p.PublishedPort > 65535)) throw invalid(`invalid JSON: PortConfig.PublishedPort ${p.PublishedPort} out of range`);
    if (p.Protocol && !['tcp', 'udp', 'sctp'].includes(p.Protocol)) throw invalid(`invalid JSON: PortConfig.Protocol "${p.Protocol}"`);
    if (p.PublishMode && p.PublishMode !== 'ingress' && p.PublishMode !== 'host') throw invalid(`invalid JSON: PortConfig.PublishMode "${p.PublishMode}"`);
    if (ep?.Mode === 'dnsrr' && (p.PublishMode ?? 'ingress') === 'ingress') {
      throw badSpec("EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
    }
    if (!p.PublishedPort) continue;
    const key = `${p.Protocol ?? 'tcp'}/${p.PublishedPort}`;
    if (seen.has(key)) throw badSpec('EndpointSpec: duplicate published ports provided');
    seen.add(key);
  }
}
