/**
 * Remote execution: give workers work. `execute` code on them, `map` a function over items,
 * `push`/`pull` values. One core; the `%%sense_px` magic and the display hooks sit on top of it.
 */
export { execute, push, pull, ExecuteStatus } from "./execute";
export type { ExecuteResult, ExecuteOptions, RemoteOptions, TransferOptions } from "./execute";
export type { NdArray } from "./parts";
export type { TargetRef, Targets } from "../workers/targets";
export { map } from "./map";
export { scatter, gather } from "./scatter";
export type { MapOptions } from "./map";
