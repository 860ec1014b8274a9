// Owns the scheduler's public surface: the Scheduler stage (store in, task
// assignments out) and the pure pieces other stages and tools may reuse
// (constraint parsing for API validation, strategy names).
export { Scheduler, STRATEGY_LABEL, ASSIGNED_MESSAGE, PENDING_MESSAGE, type SchedulerOptions, type PassStats } from './scheduler.js';
export { parseConstraints, matchConstraints, ConstraintError, type Constraint } from './constraints.js';
export { isStrategy, STRATEGIES, type StrategyName } from './strategy.js';
export { taskRequest, unschedulableReason, FILTERS, type Filter, type TaskRequest } from './filters.js';
export { placeGroup, placeOnNode, StaticCache, type GroupResult, type PlaceOptions } from './placer.js';
export { NodeInfo, occupancy, type TaskDemand } from './nodeinfo.js';
