/**
 * The public API of sense-tslab: `import * as sense from "sense-tslab"`.
 * Explicit named exports only; everything not listed here is internal.
 */
export { discover, getContext, resetContext } from "./context";
export type { SenseContext, DiscoverOptions } from "./context";
export { getAuth, SenseAuth } from "./auth";
export type { AuthOptions, AuthSource } from "./auth";
export { getNetwork, networkInfo, NetworkInfo } from "./network";
export type { NetworkOptions, NetworkFields } from "./network";
export { install, expandFlags, validatePackageSpec, onInstalled, InstallResult } from "./install";
export type { InstallOptions, InstallEvent, InstallListener, InstallArgumentValue } from "./install";
