// Owns the control API's public surface: store-level operations the Docker
// API routes call. Each validates first and writes desired state only; bad
// input throws a ShoalError and changes nothing.
export { createService, updateService, removeService, getService, listServices, serviceStatus, withDefaults } from './services.js';
export type { UpdateServiceOptions } from './services.js';
export { listNodes, getNode, updateNode, removeNode } from './nodes.js';
export { getCluster, updateClusterSpec } from './cluster.js';
export { createNetwork, getNetwork, removeNetwork, networkResource, networkFilter, networkSpecFromCreate, PREDEFINED } from './networks.js';
export { parseFilters, taskFilter, type Filters } from './filters.js';
export { resolve, tryResolve, candidates, taskName } from './resolve.js';
export { listTasks, getTask } from './tasks.js';
export { createFile, listFiles, getFile, updateFile, removeFile, usersOf, type FileKind } from './secrets.js';
