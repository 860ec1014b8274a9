// Owns how the agent reaches dockerd: a dockerode client from a DOCKER_HOST
// style address, and this node's description as dockerd reports it.
import Docker from 'dockerode';
import type { NodeDescription } from './common/types.js';

export function dockerClient(host: string): Docker {
  const u = new URL(host);
  if (u.protocol === 'unix:') return new Docker({ socketPath: u.pathname });
  if (u.protocol === 'tcp:' || u.protocol === 'http:') return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
  throw new Error(`unsupported docker host ${host} (use unix:///path or tcp://host:port)`);
}

function parseLabels(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list ?? []) {
    const i = l.indexOf('=');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

export async function describeNode(docker: Docker, hostname: string): Promise<NodeDescription> {
  const info = await docker.info();
  const plugins: { Type: string; Name: string }[] = [];
  for (const [type, names] of [['Log', info.Plugins?.Log], ['Network', info.Plugins?.Network], ['Volume', info.Plugins?.Volume]] as const) {
    for (const name of ((names as string[] | undefined) ?? []).slice().sort()) plugins.push({ Type: type, Name: name });
  }
  return {
    Hostname: hostname,
    Platform: { Architecture: info.Architecture, OS: info.OSType },
    Resources: { NanoCPUs: info.NCPU * 1e9, MemoryBytes: info.MemTotal },
    Engine: { EngineVersion: info.ServerVersion, Labels: parseLabels(info.Labels), Plugins: plugins },
  };
}
