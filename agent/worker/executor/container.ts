// Owns the translation of a Swarm task into a dockerd container: name, labels
// and the ContainerCreateOptions, as moby's cluster executor builds them
// (daemon/cluster/executor/container/container.go). Pure except for the
// task's secret and config files, which worker/secrets.ts writes as the
// options are built (tasks without them cause no I/O).
import type Dockerode from 'dockerode';
import type { Labels, Mount, Task } from '../../common/types.js';
import { taskFileMounts } from '../secrets.js';

export const LABEL_PREFIX = 'com.docker.swarm';
export const LABEL_NODE_ID = 'com.docker.swarm.node.id';
export const LABEL_TASK_ID = 'com.docker.swarm.task.id';
export const LABEL_SERVICE_ID = 'com.docker.swarm.service.id';
export const LABEL_SERVICE_NAME = 'com.docker.swarm.service.name';
export const LABEL_STACK_NAMESPACE = 'com.docker.stack.namespace';

/** Docker's default stop grace period when the spec sets none: 10 s. */
export const DEFAULT_STOP_GRACE_NS = 10e9;

export interface ContainerContext {
  /** the service's name (Spec.Name); Worker passes opts.serviceName(task) or the ServiceID */
  serviceName: string;
  nodeId: string;
  /** labels of the service, if known: `com.docker.stack.namespace` is copied from them */
  serviceLabels?: Labels;
  /** network mode of the container; default `none` (netd attaches interfaces later) */
  networkMode?: string;
}

/**
 * Swarm's task name: Task.Name when the orchestrator set one, else
 * `<service>.<slot>.<taskId>` (replicated) or `<service>.<nodeId>.<taskId>` (global).
 */
export function containerName(task: Task, serviceName: string): string {
  if (task.Name && task.Name.endsWith(`.${task.ID}`)) return task.Name;
  const slotOrNode = task.Slot && task.Slot > 0 ? String(task.Slot) : (task.NodeID ?? '');
  return `${serviceName}.${slotOrNode}.${task.ID}`;
}

/** Labels as Swarm sets them: spec labels, then task labels, then the system labels win. */
export function containerLabels(task: Task, ctx: ContainerContext): Labels {
  const labels: Labels = { ...(task.Spec.ContainerSpec.Labels ?? {}), ...(task.Labels ?? {}) };
  const ns = ctx.serviceLabels?.[LABEL_STACK_NAMESPACE];
  if (ns !== undefined) labels[LABEL_STACK_NAMESPACE] = ns;
  labels[`${LABEL_PREFIX}.task`] = '';
  labels[LABEL_TASK_ID] = task.ID;
  labels[`${LABEL_PREFIX}.task.name`] = containerName(task, ctx.serviceName);
  labels[LABEL_NODE_ID] = ctx.nodeId;
  labels[LABEL_SERVICE_ID] = task.ServiceID;
  labels[LABEL_SERVICE_NAME] = ctx.serviceName;
  return labels;
}

/** Stop grace in whole seconds, as dockerd's stop timeout takes it. */
export function stopGraceSeconds(task: Task): number {
  const ns = task.Spec.ContainerSpec.StopGracePeriod ?? DEFAULT_STOP_GRACE_NS;
  return Math.max(0, Math.floor(ns / 1e9));
}

/** `IP host [aliases…]` (hosts(5), Swarm's format) → `host:IP` for every name. */
export function extraHosts(hosts: string[] | undefined): string[] | undefined {
  if (!hosts?.length) return undefined;
  const out: string[] = [];
  for (const entry of hosts) {
    const [ip, ...names] = entry.trim().split(/\s+/);
    if (!ip || names.length === 0) continue;
    for (const n of names) out.push(`${n}:${ip}`);
  }
  return out;
}

export function mountSettings(mounts: Mount[] | undefined): Dockerode.MountSettings[] | undefined {
  if (!mounts?.length) return undefined;
  return mounts.map((m) => {
    const out: Dockerode.MountSettings = { Type: m.Type as Dockerode.MountType, Source: m.Source ?? '', Target: m.Target };
    if (m.ReadOnly) out.ReadOnly = true;
    if (m.Consistency) out.Consistency = m.Consistency as Dockerode.MountConsistency;
    if (m.Type === 'bind' && m.BindOptions) out.BindOptions = m.BindOptions as Dockerode.MountSettings['BindOptions'];
    if (m.Type === 'volume' && m.VolumeOptions) {
      out.VolumeOptions = {
        NoCopy: m.VolumeOptions.NoCopy ?? false,
        Labels: m.VolumeOptions.Labels ?? {},
        DriverConfig: { Name: m.VolumeOptions.DriverConfig?.Name ?? '', Options: m.VolumeOptions.DriverConfig?.Options ?? {} },
      };
    }
    if (m.Type === 'tmpfs' && m.TmpfsOptions) {
      out.TmpfsOptions = m.TmpfsOptions as Dockerode.MountSettings['TmpfsOptions'];
    }
    return out;
  });
}

/** Named volumes the task needs; the executor creates missing ones with these labels and driver. */
export function namedVolumes(task: Task): { Name: string; Driver: string; DriverOpts: Record<string, string>; Labels: Labels }[] {
  const out = [];
  for (const m of task.Spec.ContainerSpec.Mounts ?? []) {
    if (m.Type !== 'volume' || !m.Source) continue;
    out.push({
      Name: m.Source,
      Driver: m.VolumeOptions?.DriverConfig?.Name || 'local',
      DriverOpts: m.VolumeOptions?.DriverConfig?.Options ?? {},
      Labels: m.VolumeOptions?.Labels ?? {},
    });
  }
  return out;
}

/** Task → the body of POST /containers/create (with `name`). */
export function containerCreateOptions(task: Task, ctx: ContainerContext): Dockerode.ContainerCreateOptions {
  const spec = task.Spec.ContainerSpec;
  const limits = task.Spec.Resources?.Limits;
  const reservations = task.Spec.Resources?.Reservations;

  const opts: Dockerode.ContainerCreateOptions = {
    name: containerName(task, ctx.serviceName),
    Image: spec.Image,
    Labels: containerLabels(task, ctx),
    StopTimeout: stopGraceSeconds(task),
  };
  if (spec.Env?.length) opts.Env = [...spec.Env];
  // Command replaces the image's entrypoint and Args become its Cmd; Args alone
  // are arguments to the image's entrypoint (moby: containerConfig.config()).
  if (spec.Command?.length) {
    opts.Entrypoint = [...spec.Command];
    opts.Cmd = [...(spec.Args ?? [])];
  } else if (spec.Args?.length) {
    opts.Cmd = [...spec.Args];
  }
  if (spec.Dir) opts.WorkingDir = spec.Dir;
  if (spec.User) opts.User = spec.User;
  if (spec.Hostname) opts.Hostname = spec.Hostname;
  if (spec.TTY) opts.Tty = true;
  if (spec.OpenStdin) opts.OpenStdin = true;
  if (spec.StopSignal) opts.StopSignal = spec.StopSignal;
  if (spec.HealthCheck) opts.Healthcheck = { ...spec.HealthCheck };

  const hc: Dockerode.HostConfig = { NetworkMode: ctx.networkMode ?? 'none' };
  if (spec.ReadOnly) hc.ReadonlyRootfs = true;
  if (spec.Init !== undefined) hc.Init = spec.Init;
  const hosts = extraHosts(spec.Hosts);
  if (hosts) hc.ExtraHosts = hosts;
  if (spec.DNSConfig?.Nameservers?.length) hc.Dns = [...spec.DNSConfig.Nameservers];
  if (spec.DNSConfig?.Search?.length) hc.DnsSearch = [...spec.DNSConfig.Search];
  if (spec.DNSConfig?.Options?.length) hc.DnsOptions = [...spec.DNSConfig.Options];
  if (spec.Sysctls && Object.keys(spec.Sysctls).length) hc.Sysctls = { ...spec.Sysctls };
  if (spec.CapabilityAdd?.length) hc.CapAdd = [...spec.CapabilityAdd];
  if (spec.CapabilityDrop?.length) hc.CapDrop = [...spec.CapabilityDrop];
  if (spec.Groups?.length) hc.GroupAdd = [...spec.Groups];
  if (spec.Ulimits?.length) hc.Ulimits = spec.Ulimits.map((u) => ({ Name: u.Name, Soft: u.Soft, Hard: u.Hard }));
  const mounts = [...(mountSettings(spec.Mounts) ?? []), ...taskFileMounts(task, ctx.nodeId)];
  if (mounts.length) hc.Mounts = mounts;
  if (limits?.NanoCPUs) hc.NanoCpus = limits.NanoCPUs;
  if (limits?.MemoryBytes) hc.Memory = limits.MemoryBytes;
  if (limits?.Pids) hc.PidsLimit = limits.Pids;
  if (reservations?.MemoryBytes) hc.MemoryReservation = reservations.MemoryBytes;
  if (task.Spec.LogDriver?.Name) hc.LogConfig = { Type: task.Spec.LogDriver.Name, Config: { ...(task.Spec.LogDriver.Options ?? {}) } };
  opts.HostConfig = hc;
  return opts;
}
