// Owns the restart policy: whether a dead task is replaced, and after what
// delay. With no delay set by the user the first restart is immediate and a
// task that keeps failing backs off exponentially (0.5 s doubling to 30 s).
import { nsToMs } from '../../common/taskstate.js';
import type { Service, Task } from '../../common/types.js';

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** a slot that stayed healthy this long forgets its failures */
const BACKOFF_RESET_MS = 60_000;

interface SlotHistory { restarts: number[]; backoffMs: number }

export class RestartTracker {
  private history = new Map<string, SlotHistory>();

  /**
   * `key` names the slot (service/slot or service/node). `nodeLost` means the
   * task died with its node (down or drained): always replaced, at once, uncounted.
   */
  decide(svc: Service, dead: Task, key: string, now: number, nodeLost: boolean): { restart: boolean; delayMs: number } {
    if (nodeLost) return { restart: true, delayMs: 0 };
    const policy = svc.Spec.TaskTemplate.RestartPolicy ?? {};
    const condition = policy.Condition ?? 'any';
    if (condition === 'none') return { restart: false, delayMs: 0 };
    if (condition === 'on-failure' && dead.Status.State === 'complete') return { restart: false, delayMs: 0 };
    let h = this.history.get(key);
    if (!h || (h.restarts.length && now - h.restarts[h.restarts.length - 1] > BACKOFF_RESET_MS)) {
      h = { restarts: [], backoffMs: 0 };
      this.history.set(key, h);
    }
    const windowMs = nsToMs(policy.Window);
    const counted = windowMs > 0 ? h.restarts.filter((t) => now - t <= windowMs) : h.restarts;
    if (policy.MaxAttempts && counted.length >= policy.MaxAttempts) return { restart: false, delayMs: 0 };
    let delayMs: number;
    if (policy.Delay !== undefined) delayMs = nsToMs(policy.Delay);
    else {
      delayMs = h.backoffMs;
      h.backoffMs = Math.min(Math.max(h.backoffMs * 2, BACKOFF_START_MS), BACKOFF_MAX_MS);
    }
    h.restarts.push(now + delayMs);
    if (h.restarts.length > 100) h.restarts.splice(0, h.restarts.length - 100);
    return { restart: true, delayMs };
  }

  forget(prefix: string): void {
    for (const k of this.history.keys()) if (k.startsWith(prefix)) this.history.delete(k);
  }
}
