// Owns task reads for the API: tasks are written only by orchestrators,
// the scheduler and agents; the API lists and inspects them.
import type { Task } from '../../common/types.js';
import type { ReadView } from '../store/types.js';
import { type Filters, taskFilter } from './filters.js';
import { resolve } from './resolve.js';

export function listTasks(view: ReadView, filters: Filters): Task[] {
  return view.list('tasks', taskFilter(view, filters)).map((t) => structuredClone(t));
}

export function getTask(view: ReadView, input: string): Task {
  return structuredClone(resolve(view, 'tasks', input));
}
