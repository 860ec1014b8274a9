// Owns service operations on the store, with Docker's semantics: create
// (validate, resolve networks, allocate ports, SpecVersion 1), update with
// optimistic concurrency and rollback to PreviousSpec, remove, get with
// insertDefaults, list with filters and ServiceStatus. Writes desired state
// only; orchestrators react to the store.
import { isDeepStrictEqual } from 'node:util';
import { invalid } from '../../common/errors.js';
import { newId, nowIso } from '../../common/ids.js';
import type { HealthConfig, NetworkAttachmentConfig, Service, ServiceSpec, UpdateConfig } from '../../common/types.js';
import type { ReadView, Store } from '../store/types.js';
import { NAME_CONFLICT, badSpec, fromStore, nameConflict, precondition, unimplemented } from './errors.js';
import { checkFileRefs } from './filerefs.js';
import { type Filters, serviceFilter, serviceMode } from './filters.js';
import { checkPortConflicts, resolvePorts } from './ports.js';
import { resolve } from './resolve.js';
import { checkServiceShape, validateServiceSpec } from './validate.js';

/** Docker's stored form: mode defaults (1 replica), Isolation "default", Runtime "container" */
function normalize(spec: ServiceSpec): ServiceSpec {
  const s = structuredClone(spec);
  const m = s.Mode ?? {};
  if (!m.Global && !m.ReplicatedJob && !m.GlobalJob) {
    s.Mode = { Replicated: { ...(m.Replicated ?? {}), Replicas: m.Replicated?.Replicas ?? 1 } };
  }
  s.TaskTemplate.ContainerSpec.Isolation ||= 'default';
  s.TaskTemplate.Runtime ||= 'container';
  return s;
}

function resolveNetworks(view: ReadView, list: NetworkAttachmentConfig[] | undefined): void {
  for (const na of list ?? []) {
    if (!na.Target) throw badSpec('network attachment: target must be provided');
    const n = resolve(view, 'networks', na.Target);
    if (n.Spec.Ingress) throw badSpec(`Service cannot be explicitly attached to the ingress network "${n.Spec.Name}"`);
    na.Target = n.ID;
  }
}

/** parts of the spec that tasks are made from: a change here makes running tasks out of date */
function taskRelevant(s: ServiceSpec): unknown {
  return { t: s.TaskTemplate, e: s.EndpointSpec ?? null, n: s.Networks ?? null };
}

function nameTaken(view: ReadView, name: string, selfId?: string): boolean {
  const lower = name.toLowerCase();
  return view.list('services', (s) => s.ID !== selfId && s.Spec.Name.toLowerCase() === lower).length > 0;
}

/** the CLI (Go's json) sends ContainerSpec.Healthcheck; shoal keeps the swagger spelling HealthCheck */
function healthcheckKey(body: unknown): unknown {
  const cs = (body as { TaskTemplate?: { ContainerSpec?: { Healthcheck?: HealthConfig | null; HealthCheck?: HealthConfig } } } | null)?.TaskTemplate?.ContainerSpec;
  if (!cs || typeof cs !== 'object' || !('Healthcheck' in cs)) return body;
  const out = structuredClone(body) as { TaskTemplate: { ContainerSpec: { Healthcheck?: HealthConfig | null; HealthCheck?: HealthConfig } } };
  const c = out.TaskTemplate.ContainerSpec;
  if (c.Healthcheck) c.HealthCheck = c.Healthcheck;
  delete c.Healthcheck;
  return out;
}

/** validates and prepares a request body; throws before anything is written */
function prepare(view: ReadView, raw: unknown): ServiceSpec {
  const body = healthcheckKey(raw);
  checkServiceShape(body);
  validateServiceSpec(body);
  const spec = normalize(body);
  resolveNetworks(view, spec.TaskTemplate.Networks);
  resolveNetworks(view, spec.Networks);
  checkFileRefs(view, spec);
  return spec;
}

/** the committed object (transactions hand back copies made before the store assigned Version) */
function committed<K extends 'services' | 'nodes' | 'networks' | 'cluster'>(store: Store, kind: K, id: string) {
  return structuredClone(store.get(kind, id)!);
}

export async function createService(store: Store, body: unknown): Promise<Service> {
  const created = await store.update((tx) => {
    const spec = prepare(tx, body);
    checkPortConflicts(tx, spec);
    if (nameTaken(tx, spec.Name)) throw nameConflict(`${NAME_CONFLICT}: service ${spec.Name} already exists`);
    const ports = resolvePorts(tx, spec);
    const svc: Service = {
      ID: newId(),
      Version: { Index: 0 },
      CreatedAt: '',
      UpdatedAt: '',
      Spec: spec,
      Endpoint: { Spec: { Mode: spec.EndpointSpec?.Mode ?? 'vip', ...(spec.EndpointSpec?.Ports ? { Ports: spec.EndpointSpec.Ports } : {}) } },
      SpecVersion: 1,
    };
    if (ports) svc.Endpoint.Ports = ports;
    return tx.create('services', svc);
  });
  return committed(store, 'services', created.ID);
}

export interface UpdateServiceOptions {
  /** Version.Index the client read; a different stored index fails the update */
  version: number;
  /** `rollback=previous`: go back to PreviousSpec (the body is ignored but still validated) */
  rollback?: boolean;
}

export async function updateService(store: Store, input: string, body: unknown, opts: UpdateServiceOptions): Promise<Service> {
  if (!Number.isInteger(opts.version) || opts.version < 0) throw invalid(`invalid service version '${opts.version}'`);
  try {
    const updated = await store.update((tx) => {
      const current = resolve(tx, 'services', input);
      const requested = prepare(tx, body);
      if (!opts.rollback) {
        if (serviceMode(current) !== serviceMode({ ...current, Spec: requested })) throw unimplemented('service mode change is not allowed');
        if (current.Spec.Name !== requested.Name) throw unimplemented('renaming services is not supported');
      }
      let next: ServiceSpec;
      const svc: Service = structuredClone(current);
      if (opts.rollback) {
        if (!current.PreviousSpec) throw precondition(`service ${current.ID} does not have a previous spec`);
        next = structuredClone(current.PreviousSpec);
        svc.PreviousSpec = structuredClone(current.Spec);
        svc.UpdateStatus = { State: 'rollback_started', StartedAt: nowIso(), Message: 'manually requested rollback' };
      } else {
        next = requested;
        if (!isDeepStrictEqual(next, current.Spec)) svc.PreviousSpec = structuredClone(current.Spec);
        delete svc.UpdateStatus;
      }
      if (!isDeepStrictEqual(next.EndpointSpec, current.Spec.EndpointSpec)) checkPortConflicts(tx, next, current.ID);
      if (nameTaken(tx, next.Name, current.ID)) throw nameConflict(`${NAME_CONFLICT}: service ${next.Name} already exists`);
      svc.Spec = next;
      if (!isDeepStrictEqual(taskRelevant(next), taskRelevant(current.Spec))) {
        svc.SpecVersion = (current.SpecVersion ?? 0) + 1;
        if (!opts.rollback) svc.UpdateStatus = { State: 'updating', StartedAt: nowIso(), Message: 'update in progress' };
      }
      svc.Endpoint = { ...svc.Endpoint, Spec: { Mode: next.EndpointSpec?.Mode ?? 'vip', ...(next.EndpointSpec?.Ports ? { Ports: next.EndpointSpec.Ports } : {}) } };
      const ports = resolvePorts(tx, next, current);
      if (ports) svc.Endpoint.Ports = ports;
      else delete svc.Endpoint.Ports;
      delete svc.ServiceStatus;
      return tx.update('services', svc, opts.version);
    });
    return committed(store, 'services', updated.ID);
  } catch (err) {
    throw fromStore(err);
  }
}



export async function removeService(store: Store, input: string): Promise<void> {
  await store.update((tx) => {
    tx.remove('services', resolve(tx, 'services', input).ID);
  });
}

const DEFAULT_UPDATE: Required<Pick<UpdateConfig, 'Parallelism' | 'FailureAction' | 'Monitor' | 'MaxFailureRatio' | 'Order'>> = {
  Parallelism: 1, FailureAction: 'pause', Monitor: 5e9, MaxFailureRatio: 0, Order: 'stop-first',
};

function updateDefaults(u: UpdateConfig | undefined): UpdateConfig {
  if (!u) return { ...DEFAULT_UPDATE };
  return { ...u, Parallelism: u.Parallelism ?? 0, FailureAction: u.FailureAction || 'pause', Monitor: u.Monitor || 5e9, MaxFailureRatio: u.MaxFailureRatio ?? 0, Order: u.Order || 'stop-first' };
}

/** swarmkit's defaults.InterpolateService, in Docker's JSON form */
export function withDefaults(spec: ServiceSpec): ServiceSpec {
  const s = structuredClone(spec);
  const tt = s.TaskTemplate;
  const cs = tt.ContainerSpec;
  cs.StopGracePeriod ??= 10e9;
  cs.DNSConfig ??= {};
  cs.Isolation ||= 'default';
  tt.Resources ??= { Limits: {}, Reservations: {} };
  tt.RestartPolicy = { Condition: 'any', ...(tt.RestartPolicy ?? {}) };
  tt.RestartPolicy.Delay ??= 5e9;
  tt.RestartPolicy.MaxAttempts ??= 0;
  tt.Placement ??= {};
  s.UpdateConfig = updateDefaults(s.UpdateConfig);
  s.RollbackConfig = updateDefaults(s.RollbackConfig);
  s.EndpointSpec = { Mode: 'vip', ...(s.EndpointSpec ?? {}) };
  return s;
}

export function getService(view: ReadView, input: string, opts: { insertDefaults?: boolean } = {}): Service {
  const svc = structuredClone(resolve(view, 'services', input));
  if (opts.insertDefaults) svc.Spec = withDefaults(svc.Spec);
  return svc;
}

/** RunningTasks/DesiredTasks/CompletedTasks as swarmkit's ListServiceStatuses counts them */
export function serviceStatus(view: ReadView, svc: Service): NonNullable<Service['ServiceStatus']> {
  const tasks = view.byIndex('tasks', 'service', svc.ID);
  const m = svc.Spec.Mode ?? {};
  const global = !!(m.Global || m.GlobalJob);
  let desired = m.Replicated?.Replicas ?? m.ReplicatedJob?.MaxConcurrent ?? 0;
  let running = 0;
  let completed = 0;
  for (const t of tasks) {
    if (t.Status.State === 'running') running++;
    if ((m.ReplicatedJob || m.GlobalJob) && t.Status.State === 'complete') completed++;
    if (global && t.DesiredState === 'running') desired++;
  }
  return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
}

export function listServices(view: ReadView, filters: Filters, opts: { status?: boolean } = {}): Service[] {
  const match = serviceFilter(filters);
  return view.list('services', match).map((s) => {
    const out = structuredClone(s);
    if (opts.status) out.ServiceStatus = serviceStatus(view, s);
    return out;
  });
}
