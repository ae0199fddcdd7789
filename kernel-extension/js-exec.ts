/**
 * Running JavaScript cells for the fast kernel: plain scripts in the kernel's own context, cells
 * with top-level `await` rewritten into an async function whose top-level declarations stay
 * visible to later cells (as in Node's REPL), plus the basic completion, inspection and
 * is-complete answers. Never loads TypeScript; `acorn` is loaded only for `await` cells.
 */
import * as util from "node:util";
import * as vm from "node:vm";

/** What a cell evaluated to. */
export type CellOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Minimal shape of the acorn AST nodes the rewrite looks at. */
interface AstNode {
  type: string;
  start: number;
  end: number;
  kind?: string;
  id?: AstNode | null;
  name?: string;
  declarations?: AstNode[];
  init?: AstNode | null;
  expression?: AstNode;
  body?: AstNode[] | AstNode;
  properties?: AstNode[];
  elements?: (AstNode | null)[];
  value?: AstNode;
  argument?: AstNode;
  left?: AstNode;
}

function patternNames(p: AstNode | null | undefined, out: string[]): void {
  if (!p) return;
  switch (p.type) {
    case "Identifier":
      out.push(p.name ?? "");
      break;
    case "ObjectPattern":
      for (const prop of p.properties ?? []) patternNames(prop.type === "RestElement" ? prop.argument : prop.value, out);
      break;
    case "ArrayPattern":
      for (const e of p.elements ?? []) patternNames(e, out);
      break;
    case "RestElement":
      patternNames(p.argument, out);
      break;
    case "AssignmentPattern":
      patternNames(p.left, out);
      break;
  }
}

/**
 * Rewrites a cell that uses top-level `await` into `<hoisted declarations>; (async () => {...})()`:
 * `let`/`const`/`class` become script-level `let`s assigned inside the function, `var` and
 * functions become globals, and a last expression statement is returned as the cell's value.
 * @throws SyntaxError from acorn when the code does not parse even with top-level await.
 */
export function rewriteTopLevelAwait(code: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const acorn = require("acorn") as typeof import("acorn");
  const ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script", allowAwaitOutsideFunction: true, allowReturnOutsideFunction: false }) as unknown as AstNode;
  const body = ast.body as AstNode[];
  const lets: string[] = [];
  const vars: string[] = [];
  const fnNames: string[] = [];
  const edits: { start: number; end: number; text: string }[] = [];
  body.forEach((stmt, i) => {
    if (stmt.type === "VariableDeclaration") {
      const names: string[] = [];
      const assigns: string[] = [];
      for (const d of stmt.declarations ?? []) {
        patternNames(d.id, names);
        if (d.init && d.id) assigns.push(`(${code.slice(d.id.start, d.id.end)} = ${code.slice(d.init.start, d.init.end)})`);
      }
      (stmt.kind === "var" ? vars : lets).push(...names);
      edits.push({ start: stmt.start, end: stmt.end, text: assigns.length ? `void (${assigns.join(", ")});` : ";" });
    } else if (stmt.type === "ClassDeclaration" && stmt.id?.name) {
      lets.push(stmt.id.name);
      edits.push({ start: stmt.start, end: stmt.end, text: `${stmt.id.name} = ${code.slice(stmt.start, stmt.end)};` });
    } else if (stmt.type === "FunctionDeclaration" && stmt.id?.name) {
      fnNames.push(stmt.id.name);
    } else if (i === body.length - 1 && stmt.type === "ExpressionStatement" && stmt.expression) {
      edits.push({ start: stmt.start, end: stmt.end, text: `return (${code.slice(stmt.expression.start, stmt.expression.end)});` });
    }
  });
  let inner = code;
  for (const e of edits.sort((a, b) => b.start - a.start)) inner = inner.slice(0, e.start) + e.text + inner.slice(e.end);
  // Function declarations are hoisted inside the async function; publish them first thing.
  const publish = fnNames.map((n) => `globalThis[${JSON.stringify(n)}] = ${n};`).join(" ");
  const outer = [lets.length ? `let ${[...new Set(lets)].join(", ")};` : "", vars.length || fnNames.length ? `var ${[...new Set([...vars, ...fnNames])].join(", ")};` : ""].join(" ");
  // One line so line numbers in stack traces match the cell.
  return `${outer} (async () => { ${publish} ${inner}\n})()`;
}

function compile(code: string, filename: string): vm.Script {
  return new vm.Script(code, { filename });
}

/**
 * Runs one cell in this context. A cell that compiles as a script runs as one (its completion
 * value is the result); a cell that only compiles with top-level `await` is rewritten and its
 * promise awaited. `interrupted` rejects the wait for an async cell (a busy synchronous cell is
 * stopped by SIGINT through `breakOnSigint`). `filename` names the cell in stack traces (the
 * engine names it after the execution count, which the kernel core owns). Never throws: a
 * compile or run error is the outcome.
 */
export async function runCell(code: string, interrupted: Promise<never>, filename: string): Promise<CellOutcome> {
  let script: vm.Script;
  let isAsync = false;
  try {
    script = compile(code, filename);
  } catch (e) {
    if (!(e instanceof SyntaxError) || !/\bawait\b/.test(code)) return { ok: false, error: e };
    try {
      script = compile(rewriteTopLevelAwait(code), filename);
      isAsync = true;
    } catch {
      return { ok: false, error: e };
    }
  }
  try {
    const value: unknown = script.runInThisContext({ breakOnSigint: true, displayErrors: false });
    if (!isAsync) return { ok: true, value };
    return { ok: true, value: await Promise.race([value as Promise<unknown>, interrupted]) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** One entry of an execute reply's `user_expressions` (Jupyter messaging 5.3). */
export type UserExpressionResult =
  | { status: "ok"; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { status: "error"; ename: string; evalue: string; traceback: string[] };

/**
 * Evaluates an execute request's `user_expressions` after its code ran, as ipykernel does: each
 * expression in this context, its value as a MIME bundle (`toBundle`), a throw as an error entry.
 * Anything but a record of strings evaluates nothing.
 */
export function evaluateUserExpressions(expressions: unknown, toBundle: (value: unknown) => Record<string, unknown>): Record<string, UserExpressionResult> {
  const out: Record<string, UserExpressionResult> = {};
  if (expressions === null || typeof expressions !== "object" || Array.isArray(expressions)) return out;
  for (const [name, expr] of Object.entries(expressions as Record<string, unknown>)) {
    if (typeof expr !== "string") continue;
    try {
      out[name] = { status: "ok", data: toBundle(vm.runInThisContext(expr, { filename: "user-expression.js" })), metadata: {} };
    } catch (e) {
      const ename = e instanceof Error ? e.name : "Error";
      const evalue = e instanceof Error ? e.message : util.inspect(e);
      out[name] = { status: "error", ename, evalue, traceback: [`${ename}: ${evalue}`] };
    }
  }
  return out;
}

/** `complete` when the code can run as is, `incomplete` when more input could complete it, else `invalid`. */
export function isComplete(code: string): "complete" | "incomplete" | "invalid" {
  const check = (src: string): string | null => {
    try {
      new vm.Script(src);
      return null;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  };
  let err = check(code);
  if (err && /\bawait\b/.test(code)) err = check(`(async () => {\n${code}\n})`);
  if (err === null) return "complete";
  return /Unexpected end of input|Unterminated|missing \) after/.test(err) ? "incomplete" : "invalid";
}

const CHAIN = /((?:[A-Za-z_$][\w$]*\.)*)([A-Za-z_$][\w$]*)?$/;

function resolveChain(chain: string[]): unknown {
  if (chain.length === 0) return globalThis;
  // Only a bare identifier is evaluated (script-level let/const are not properties of globalThis).
  let value: unknown = vm.runInThisContext(`typeof ${chain[0]} === "undefined" ? undefined : ${chain[0]}`);
  for (const k of chain.slice(1)) {
    if (value === null || value === undefined) return undefined;
    value = (value as Record<string, unknown>)[k];
  }
  return value;
}

function propertyNames(value: unknown): string[] {
  const names = new Set<string>();
  let o: unknown = value;
  for (let depth = 0; o !== null && o !== undefined && depth < 8; depth++) {
    for (const k of Object.getOwnPropertyNames(o)) names.add(k);
    o = Object.getPrototypeOf(o);
  }
  return [...names].filter((n) => /^[A-Za-z_$][\w$]*$/.test(n)).sort();
}

/** Completion candidates for the identifier or property path that ends at `cursor`. */
export function complete(code: string, cursor: number): { matches: string[]; start: number; end: number } {
  const before = code.slice(0, cursor);
  const m = CHAIN.exec(before);
  const prefix = m?.[2] ?? "";
  const chain = (m?.[1] ?? "").split(".").filter(Boolean);
  let matches: string[];
  try {
    matches = propertyNames(resolveChain(chain)).filter((n) => n.startsWith(prefix));
  } catch {
    matches = [];
  }
  return { matches, start: cursor - prefix.length, end: cursor };
}

/** A short description (type and `util.inspect`) of the expression path under `cursor`, or null. */
export function inspect(code: string, cursor: number): string | null {
  let end = cursor;
  while (end < code.length && /[\w$]/.test(code[end])) end++;
  const m = CHAIN.exec(code.slice(0, end));
  if (!m || !m[2]) return null;
  const chain = [...(m[1] ?? "").split(".").filter(Boolean), m[2]];
  try {
    const value = resolveChain(chain);
    if (value === undefined) return null;
    return `${chain.join(".")}: ${typeof value}\n${util.inspect(value, { depth: 1, colors: false })}`;
  } catch {
    return null;
  }
}
