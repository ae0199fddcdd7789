/**
 * Workers: `launchWorkers`, `listWorkers`, `getMaster`, `stopWorkers`, `restartWorkers`, `awaitWorkers`, their
 * output, the size table, and the keeper controls (the default Cluster); the `Cluster`, `Worker`
 * and `KernelBackend` seams. See docs/workers.md and docs/ARCHITECTURE.md.
 */
export { launchWorkers, listWorkers, getMaster, stopWorkers, restartWorkers, awaitWorkers, workerOutput, workerOutputItems, getWorker, onWorkerStatus, setWorkerPool, workerPools, keeperPid, stopKeeper, defaultCluster } from "./api";
export { workerUsage } from "./api";
export type { WorkerUsage } from "./usage";
export type { UsageReply } from "../protocol/usage";
export { Cluster, RETIRED_KEPT } from "./cluster";
export type { LaunchWorkersOptions, PoolOptions, ClusterOptions, ShutdownHooks, RestartOptions } from "./cluster";
export type { AwaitOptions, AwaitResult } from "./await";
export type { WorkerContextInput } from "../jupyter/context-input";
export { Worker } from "./worker";
export type { KernelBackend, KernelChannel, StartRequest, SessionChange, IopubMessage, ExecuteRequest, ExecuteReply, ExecuteFuture, KernelLifeStatus, ChannelStatus } from "../backends/backend";
export { JupyterServerBackend } from "../backends/jupyter/backend";
export type { JupyterServerBackendOptions, KernelConnector } from "../backends/jupyter/backend";
export { FAST_ENGINE } from "./kernelspec";
export type { PoolInfo } from "./pool";
export { SIZES, configureSizes, ENGINE_ALIASES } from "./options";
export type { LaunchOptions, SizeSpec } from "./options";
export type { WorkerOutputItem } from "./output";
export type { WorkerRef } from "./records";
export { encodeWorkerTag, decodeWorkerTag, WORKER_SESSION_TYPE, POOL_SESSION_TYPE } from "./session-tags";
export type { WorkerTag } from "./session-tags";
