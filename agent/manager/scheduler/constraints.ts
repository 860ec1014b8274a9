// Owns placement constraints: parsing `key==value` / `key!=value` expressions
// (Swarm's syntax and validation messages) and matching them against a node.
// Keys: node.id, node.hostname, node.role, node.ip, node.platform.os,
// node.platform.arch, node.labels.<name>, engine.labels.<name>. Values compare
// case-insensitively; an unknown key matches no node, as in Swarm.
import ipaddr from 'ipaddr.js';
import type { Node } from '../../common/types.js';

export type Operator = '==' | '!=';

export interface Constraint {
  key: string;
  op: Operator;
  value: string;
}

const KEY = /^[a-z_][a-z0-9\-_.]+$/i;
const VALUE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;
const OPERATORS: Operator[] = ['==', '!='];

export class ConstraintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConstraintError';
  }
}

/** parses every expression; throws ConstraintError with Swarm's wording on the first bad one */
export function parseConstraints(exprs: readonly string[] | undefined): Constraint[] {
  const out: Constraint[] = [];
  for (const e of exprs ?? []) {
    const op = OPERATORS.find((o) => e.includes(o));
    if (!op) throw new ConstraintError(`constraint expected one operator from ${OPERATORS.join(', ')}`);
    const at = e.indexOf(op);
    const key = e.slice(0, at).trim();
    const value = e.slice(at + op.length).trim();
    if (!KEY.test(key)) throw new ConstraintError(`key '${key}' is invalid`);
    if (!VALUE.test(value)) throw new ConstraintError(`value '${value}' is invalid`);
    out.push({ key, op, value });
  }
  return out;
}

const NODE_LABEL = 'node.labels.';
const ENGINE_LABEL = 'engine.labels.';

/** the value a node has for a constraint or preference key; undefined = unknown key */
export function nodeAttribute(node: Node, key: string): string | undefined {
  const k = key.toLowerCase();
  switch (k) {
    case 'node.id': return node.ID;
    case 'node.hostname': return node.Description?.Hostname ?? '';
    case 'node.role': return node.Spec.Role;
    case 'node.ip': return node.Status?.Addr ?? '';
    case 'node.platform.os': return node.Description?.Platform?.OS ?? '';
    case 'node.platform.arch': return node.Description?.Platform?.Architecture ?? '';
  }
  // label names themselves are case sensitive
  if (k.startsWith(NODE_LABEL) && key.length > NODE_LABEL.length) {
    return node.Spec.Labels?.[key.slice(NODE_LABEL.length)] ?? '';
  }
  if (k.startsWith(ENGINE_LABEL) && key.length > ENGINE_LABEL.length) {
    return node.Description?.Engine?.Labels?.[key.slice(ENGINE_LABEL.length)] ?? '';
  }
  return undefined;
}

function ipMatches(pattern: string, addr: string): boolean {
  if (!ipaddr.isValid(addr)) return false;
  try {
    const ip = ipaddr.process(addr);
    if (pattern.includes('/')) {
      const [net, bits] = ipaddr.parseCIDR(pattern);
      const a = ip.kind() === net.kind() ? ip : ip.kind() === 'ipv4' ? (ip as ipaddr.IPv4).toIPv4MappedAddress() : ip;
      return a.kind() === net.kind() && a.match([net, bits]);
    }
    return ipaddr.isValid(pattern) && ipaddr.process(pattern).toString() === ip.toString();
  } catch {
    return false;
  }
}

/** true when the node satisfies every constraint */
export function matchConstraints(constraints: readonly Constraint[], node: Node): boolean {
  for (const c of constraints) {
    const actual = nodeAttribute(node, c.key);
    if (actual === undefined) return false;
    const equal = c.key.toLowerCase() === 'node.ip'
      ? ipMatches(c.value, actual)
      : actual.toLowerCase() === c.value.toLowerCase();
    if ((c.op === '==') !== equal) return false;
  }
  return true;
}
