// Owns the node's membership record on disk (<stateDir>/state.json): who this
// node is in which swarm, written atomically so a crash never leaves half.
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeRole } from './common/types.js';

export interface NodeState {
  nodeId: string;
  role: NodeRole;
  advertiseAddr: string;   // host the node is reached at
  listenAddr: string;      // host:port of the cluster port (2377)
  /** workers: managers' host:port, the one joined first */
  managers?: string[];
  /** managers: where the cluster state lives (absent: the embedded store) */
  store?: 'etcd' | 'external';
}

export function readNodeState(stateDir: string): NodeState | undefined {
  const p = join(stateDir, 'state.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as NodeState) : undefined;
}

export function writeNodeState(stateDir: string, s: NodeState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, 'state.json.tmp');
  const fd = openSync(tmp, 'w', 0o600);
  writeFileSync(fd, JSON.stringify(s, null, 2));
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(stateDir, 'state.json'));
}
