/**
 * The public API of sense-tslab: `import * as sense from "sense-tslab"`.
 * Explicit named exports only; everything not listed here is internal.
 */
export { discover, discoverRun, getContext, getRunContext, resetContext } from "./jupyter/context";
export type { SenseContext, DirectContext, RunContext, DiscoverOptions } from "./jupyter/context";
export { getAuth, SenseAuth } from "./platform/auth";
export type { AuthOptions, AuthSource } from "./platform/auth";
export { getNetwork, networkInfo, NetworkInfo } from "./platform/network";
export type { NetworkOptions, NetworkFields } from "./platform/network";
export { install, expandFlags, validatePackageSpec, onInstalled, InstallResult } from "./platform/npm-install";
export type { InstallOptions, InstallEvent, InstallListener, InstallArgumentValue } from "./platform/npm-install";
// Magics (the built-in %sense_* magics are registered by importing ./magics) and displays.
export { magic, runMagic, createMagicTag, runCell, isMagicCell, defineMagic, MagicRegistry, defaultRegistry, formatUsage, formatHelp } from "./magics";
export type { MagicOptions, MagicTag, MagicOutcome, MagicContext, MagicScope, MagicSpec, MagicArgs, OptionSpec, PositionalSpec, Magic } from "./magics";
export { makeDisplayable, isDisplayable, escapeHtml } from "./display/bundle";
export type { Displayable } from "./display/bundle";
export { renderWorkers, renderWorker, renderNetwork, renderAuth, renderInstall, renderProgress, renderMagicList, renderTable } from "./display/tables";
export { consoleSink, captureSink } from "./display/sink";
export type { OutputSink, MimeBundle, DisplayOptions } from "./display/sink";
export { liveDisplay, display } from "./display/live";
export { registerDisplayHook, richBundle } from "./display/hooks";
export type { DisplayHook } from "./display/hooks";
export type { LiveDisplay } from "./display/live";
// Workers (issue 3): launch, list, stop, await, their output; the size table; the keeper.
export { launchWorkers, listWorkers, getMaster, stopWorkers, restartWorkers, awaitWorkers, workerOutput, workerOutputItems, onWorkerStatus, setWorkerPool, workerPools, SIZES, configureSizes, ENGINE_ALIASES, keeperPid, stopKeeper } from "./workers";
// Per-worker CPU and memory (issue 26).
export { workerUsage } from "./workers";
export type { WorkerUsage, UsageReply } from "./workers";
export type { LaunchWorkersOptions, LaunchOptions, AwaitOptions, AwaitResult, WorkerContextInput, SizeSpec, WorkerOutputItem, PoolOptions, PoolInfo } from "./workers";
// Remote execution (issue 16): run code on workers, map a function over items, move values.
export { execute, map, push, pull, scatter, gather } from "./remote";
export type { ExecuteResult, ExecuteOptions, ExecuteStatus, MapOptions, NdArray, RemoteOptions, TransferOptions, TargetRef, Targets } from "./remote";
export { renderExecuteResults, renderMapProgress } from "./display/tables";
// Records, errors and the REST client.
export type { WorkerRecord, WorkerStatus, WorkerSize } from "./jupyter/schemas";
export { SenseError, UsageError, ConfigError, RestError, InstallError, WorkerError, RemoteError, isSenseError, isUsageError, isRemoteError } from "./errors";
export type { RemoteFailure } from "./errors";
export type { SenseErrorCode } from "./errors";
export { RestClient } from "./jupyter/rest";
export type { ServerEndpoint } from "./jupyter/rest";
export { onShutdown } from "./lifecycle";
export { JUPYTER_WS_MESSAGE_LIMIT_BYTES, MAX_MESSAGE_CONTENT_BYTES, checkWireSize } from "./protocol/limits";
export { gatewayInfo, sizeToKernelEnv, kernelSpecForSize } from "./jupyter/gateway";
export type { GatewayInfo, SizeResources, KernelResourceEnv } from "./jupyter/gateway";
