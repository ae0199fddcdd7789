/**
 * The magics registry, with the built-in `%sense_*` magics registered. The Sense kernels load
 * this module (`dist/src/magics`) and call {@link runCell}.
 */
import "./builtins";
import "./remote";

export { tokenize, quoteToken, literal, segmentsText } from "./tokenize";
export type { Segment } from "./tokenize";
export { expandArgs, varsScope, emptyScope, stringifyValue } from "./expand";
export type { MagicScope } from "./expand";
export {
  defineMagic,
  parseArgs,
  formatUsage,
  formatHelp,
  MagicRegistry,
  defaultRegistry,
  lsmagicMagic,
  senseHelpMagic,
} from "./registry";
export type { Magic, MagicArgs, MagicContext, MagicKind, MagicSpec, OptionSpec, OptionType, OptionValues, PositionalSpec } from "./registry";
export { runCell, executeCell, isMagicCell, parseCell, formatFailure, formatUsageError } from "./run";
export type { MagicOutcome, ParsedInvocation } from "./run";
export { magic, runMagic, createMagicTag } from "./template";
export type { MagicOptions, MagicTag } from "./template";
export { registerBuiltins, builtinMagics, followWorkers, followWorkerEvents, realCore } from "./builtins";
export type { SenseCore, FollowOptions } from "./builtins";
export { editDistance, suggestSimilar, didYouMean } from "./suggest";
export { remoteMagics, registerRemoteMagics, realRemoteCore, outBundle } from "./remote";
export type { RemoteCore } from "./remote";
