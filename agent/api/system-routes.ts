// Owns /_ping, /version and /info: dockerd's answers with shoal's API
// version, and /info's Swarm section and Name from the swarm backend.
import os from 'node:os';
import { API_VERSION, MIN_API_VERSION, sendJson } from './respond.js';
import { type Ctx, type Route, route } from './context.js';
import type { SwarmBackend } from './backend.js';

/** the value of dockerd's `Swarm` ping header */
export function swarmHeader(backend: SwarmBackend): string {
  try {
    const li = backend.info();
    if (li.LocalNodeState === 'active') return li.ControlAvailable ? 'active/manager' : 'active/worker';
    return li.LocalNodeState;
  } catch {
    return 'inactive';
  }
}

function ping(c: Ctx): void {
  const headers = {
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    'Content-Type': 'text/plain; charset=utf-8',
    Swarm: swarmHeader(c.backend),
  };
  if (c.req.method === 'HEAD') {
    c.res.writeHead(200, { ...headers, 'Content-Length': 0 });
    c.res.end();
  } else {
    c.res.writeHead(200, { ...headers, 'Content-Length': 2 });
    c.res.end('OK');
  }
}

/** Docker's SwarmInfo for /info */
export function swarmInfo(backend: SwarmBackend): Record<string, unknown> {
  const li = backend.info();
  const out: Record<string, unknown> = {
    NodeID: li.NodeID, NodeAddr: li.NodeAddr, LocalNodeState: li.LocalNodeState,
    ControlAvailable: li.ControlAvailable, Error: li.Error, RemoteManagers: li.RemoteManagers,
  };
  if (!li.ControlAvailable) return out;
  try {
    const store = backend.control().store;
    const nodes = store.list('nodes');
    out.Nodes = nodes.length;
    out.Managers = nodes.filter((n) => n.Spec.Role === 'manager').length;
    const c = store.list('cluster')[0];
    if (c) {
      out.Cluster = {
        ID: c.ID, Version: c.Version, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Spec: c.Spec, TLSInfo: c.TLSInfo,
        RootRotationInProgress: c.RootRotationInProgress, DefaultAddrPool: c.DefaultAddrPool, SubnetSize: c.SubnetSize,
        DataPathPort: c.DataPathPort,
      };
    }
  } catch { /* lost the control plane between the two calls: report what we have */ }
  return out;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

export const systemRoutes: Route[] = [
  route('GET', /^\/_ping$/, ping),
  route('HEAD', /^\/_ping$/, ping),
  route('GET', /^\/version$/, async (c) => {
    let v: Record<string, unknown>;
    try {
      v = await c.upstream.getJson<Record<string, unknown>>('/version');
    } catch {
      // without dockerd, describe ourselves
      v = { Platform: { Name: 'shoal' }, Components: [], Version: c.serverName.split('/')[1] ?? '', GitCommit: '', GoVersion: '', Os: 'linux', Arch: ARCH[process.arch] ?? process.arch, KernelVersion: os.release(), BuildTime: '' };
    }
    v.ApiVersion = API_VERSION;
    v.MinAPIVersion = MIN_API_VERSION;
    for (const comp of (Array.isArray(v.Components) ? v.Components : []) as { Name?: string; Details?: Record<string, string> }[]) {
      if (comp.Name === 'Engine' && comp.Details) { comp.Details.ApiVersion = API_VERSION; comp.Details.MinAPIVersion = MIN_API_VERSION; }
    }
    sendJson(c.res, 200, v);
  }),
  route('GET', /^\/info$/, async (c) => {
    const info = await c.upstream.getJson<Record<string, unknown>>('/info');
    info.Name = c.backend.hostname;
    info.Swarm = swarmInfo(c.backend);
    sendJson(c.res, 200, info);
  }),
];
