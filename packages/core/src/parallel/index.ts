// Worker pool for the batched path (both cores): createOvqWorkerPool, used as options.pool.
export { createOvqWorkerPool, type OvqWorkerPool, type OvqWorkerPoolOptions } from './pool.js';
