/**
 * How a failed cell is reported: every failure becomes `{ ename, evalue, traceback }`, the same in
 * the execute_reply and in the iopub `error` message, whichever engine or magic raised it.
 */
import * as util from "node:util";

/** Raised into a cell when the user interrupts it (Jupyter's name for it, as in IPython). */
export class KeyboardInterrupt extends Error {
  override name = "KeyboardInterrupt";
  constructor() {
    super("Execution interrupted");
  }
}

/** One compiler message about a cell, with its 1-based position. */
export interface CellDiagnostic {
  file: string;
  line: number;
  column: number;
  code: number;
  message: string;
}

/** A cell did not compile; `diagnostics` say where and why (file:line:col, as tsc prints them). */
export class CompileError extends Error {
  override name = "CompileError";
  constructor(readonly diagnostics: CellDiagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n"));
  }
}

/** `file:line:col - error TS<code>: message` (tsc's format). */
export function formatDiagnostic(d: CellDiagnostic): string {
  return `${d.file}:${d.line}:${d.column} - error TS${d.code}: ${d.message}`;
}

/** The error content of a failed cell. */
export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

function isInterrupt(e: unknown): boolean {
  if (e instanceof KeyboardInterrupt) return true;
  if (!(e instanceof Error)) return false;
  return (e as NodeJS.ErrnoException).code === "ERR_SCRIPT_EXECUTION_INTERRUPTED" || e.name === "KeyboardInterrupt";
}

// Frames of the kernel itself say nothing about the user's code.
const KERNEL_FRAME = /[\\/](core|js-engine|ts-engine|js-exec|magic-cells)\.[jt]s|node:vm|node:internal/;

/** Stack lines up to the first frame of the kernel itself. */
export function cleanStack(stack: string): string[] {
  const lines = stack.split("\n");
  const cut = lines.findIndex((l, i) => i > 0 && KERNEL_FRAME.test(l));
  return cut > 0 ? lines.slice(0, cut) : lines;
}

/**
 * Describes anything a cell threw. Interrupts are `KeyboardInterrupt`; compile errors list
 * their diagnostics; Sense errors (with a `code`, e.g. a magic's UsageError) are one line without
 * a stack; other errors keep their stack without the kernel's frames.
 */
export function describeError(e: unknown): ErrorContent {
  if (isInterrupt(e)) return { ename: "KeyboardInterrupt", evalue: "Execution interrupted", traceback: ["KeyboardInterrupt: Execution interrupted"] };
  if (e instanceof CompileError) return { ename: e.name, evalue: e.message, traceback: e.diagnostics.map(formatDiagnostic) };
  if (e instanceof Error) {
    const ename = e.name || "Error";
    const evalue = e.message;
    // Sense errors have lowercase snake_case codes (Node's are ERR_* / E*): their message says it all.
    const code = (e as { code?: unknown }).code;
    const isSense = typeof code === "string" && /^[a-z][a-z_]*$/.test(code);
    if (isSense || !e.stack) return { ename, evalue, traceback: [`${ename}: ${evalue}`] };
    return { ename, evalue, traceback: cleanStack(e.stack) };
  }
  const evalue = util.inspect(e);
  return { ename: "Error", evalue, traceback: [`Uncaught ${evalue}`] };
}
