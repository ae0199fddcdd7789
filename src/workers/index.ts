/**
 * Workers: `launchWorkers`, `listWorkers`, `getMaster`, `stopWorkers`, `awaitWorkers`, their
 * output, the size table, and the keeper controls. See docs/workers.md.
 */
export { launchWorkers, listWorkers, getMaster, stopWorkers, awaitWorkers, workerOutput, workerOutputItems, onWorkerStatus, setWorkerPool, workerPools } from "./cluster";
export type { LaunchWorkersOptions, AwaitOptions, AwaitResult, WorkerContextInput, PoolOptions } from "./cluster";
export { POOL_SESSION_TYPE } from "./pool";
export type { PoolInfo } from "./pool";
export { SIZES, configureSizes, ENGINE_ALIASES } from "./options";
export type { LaunchOptions, SizeSpec } from "./options";
export type { WorkerOutputItem } from "./output";
export { encodeWorkerTag, decodeWorkerTag, WORKER_SESSION_TYPE } from "./names";
export type { WorkerTag } from "./names";
export { keeperPid, stopKeeper } from "./keeperClient";
