/**
 * The contract between the protocol core (core.ts) and a language engine: the JavaScript engine
 * (js-engine.ts, no compiler) and the TypeScript engine (ts-engine.ts, tslab's converter created
 * lazily). The core owns the wire, the queue, output, errors and magics; an engine only runs code.
 */
import type { CellIO, MagicScope } from "../src/protocol/cell";

/** What a cell evaluated to: its value (`undefined`: no execute_result), or what it threw. */
export type CellOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Language facts for kernel_info. */
export interface EngineInfo {
  /** `language_info` of kernel_info_reply. */
  languageInfo: { name: string; version: string; mimetype: string; file_extension: string; codemirror_mode?: string };
  /** First words of the banner. */
  banner: string;
}

/** Completion candidates, as complete_reply needs them. */
export interface Completion {
  matches: string[];
  start: number;
  end: number;
}

/** is_complete_reply's status (and indent when incomplete). */
export interface Completeness {
  status: "complete" | "incomplete" | "invalid" | "unknown";
  indent?: string;
}

/** A language engine. Every method may throw; the core turns a throw into an error reply. */
export interface Engine {
  readonly info: EngineInfo;
  /**
   * Runs a cell. `precompiled`: the code is JavaScript the master already checked and
   * transpiled (a worker's startup code, remote calls): run it without any compiler.
   */
  execute(code: string, io: CellIO, precompiled: boolean): Promise<CellOutcome>;
  complete(code: string, cursor: number): Completion;
  /** Text shown for the expression under the cursor, or null. */
  inspect(code: string, cursor: number): string | null;
  isComplete(code: string): Completeness;
  /** The notebook's variables for magics. */
  scope(): MagicScope;
  /**
   * The kernel looks idle after it answered kernel_info and no worker code came: a chance to
   * prepare what the first cell will need (the TypeScript engine builds its converter).
   */
  warm?(): void;
}
