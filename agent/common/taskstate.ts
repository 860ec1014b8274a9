// Owns task-state arithmetic: Docker's task states are ordered; a task only moves forward.
import { TASK_STATES, type Task, type TaskState } from './types.js';

const ORDER = new Map<TaskState, number>(TASK_STATES.map((s, i) => [s, i]));

export function stateIndex(s: TaskState): number {
  return ORDER.get(s) ?? 0;
}

/** the task has finished, for good (complete, shutdown, failed, rejected, remove, orphaned) */
export function isTerminal(s: TaskState): boolean {
  return stateIndex(s) > stateIndex('running');
}

/** the task is, or is about to be, running on its node */
export function isLive(t: Task): boolean {
  return !isTerminal(t.Status.State) && stateIndex(t.DesiredState) <= stateIndex('running');
}

/** a later state never goes back to an earlier one */
export function isForward(from: TaskState, to: TaskState): boolean {
  return stateIndex(to) > stateIndex(from);
}

export const NANOS = 1e9;
export const nsToMs = (ns: number | undefined): number => Math.round((ns ?? 0) / 1e6);
