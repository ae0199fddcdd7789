/**
 * Engine resolution: which kernelspec a launch starts (the engine asked for, else the master's
 * own, else `sense-ts`; behind a gateway its sized variant), in which language its preamble is
 * written, and the startup code the fast engine gets (TypeScript checked and transpiled here).
 */
import * as path from "node:path";
import { WorkerError } from "../errors";
import { FAST_KERNEL_NAME } from "../protocol/marks";
import { gatewayInfoFromSpecs, kernelSpecForSize } from "../jupyter/gateway";
import { isRestError } from "../jupyter/rest";
import { checkAndTranspile } from "../transpile";
import type { KernelBackend } from "../backends/backend";
import type { ResolvedContext } from "../jupyter/context-input";
import type { LaunchPlan } from "./options";
import { preambleLanguage, PreambleLanguage } from "./bootstrap/preamble";

/** The lean JavaScript worker kernel; TypeScript startup code is checked and transpiled for it here. */
export const FAST_ENGINE = FAST_KERNEL_NAME;

/** A resolved engine. */
export interface ResolvedEngine {
  /** The engine asked for (or defaulted). */
  engine: string;
  /** The kernelspec started: `engine`, or its sized variant behind a gateway. */
  kernelName: string;
  language: PreambleLanguage;
  /** The kernelspec of the master, when the master is a kernel. */
  masterEngine?: string;
  /** The master kernelspec's language, when known. */
  masterLanguage?: string;
  /** A Sense JavaScript/TypeScript kernel (its kernelspec says so): it runs precompiled code without a compiler. */
  sense: boolean;
}

/**
 * The kernelspec to start and its preamble language. Behind a gateway, a worker of size `s` runs the
 * sized kernelspec `<engine>-<s>` when the server has one (its env carries `KERNEL_CPUS`/`KERNEL_MEMORY`,
 * which EG turns into the kernel's resources); elsewhere sizes stay advisory.
 * @throws WorkerError `unknown_engine` (not installed, or no preamble for its language); RestError.
 */
export async function resolveEngine(backend: KernelBackend, ctx: ResolvedContext, plan: Pick<LaunchPlan, "engine" | "size">): Promise<ResolvedEngine> {
  const specs = await backend.kernelSpecs();
  let masterEngine: string | undefined;
  if (ctx.kernelId) {
    try {
      masterEngine = (await backend.getKernel(ctx.kernelId)).name;
    } catch (e) {
      if (!isRestError(e) || e.code !== "not_found") throw e;
    }
  }
  const engine = plan.engine ?? masterEngine ?? "sense-ts";
  const installed = Object.keys(specs.kernelspecs).sort();
  // Own keys only: an engine named `__proto__` is unknown, not Object.prototype.
  const spec = Object.hasOwn(specs.kernelspecs, engine) ? specs.kernelspecs[engine] : undefined;
  if (!spec) {
    throw new WorkerError("unknown_engine", `unknown engine ${JSON.stringify(engine)}; installed kernelspecs: ${installed.join(", ")}`, { engine, installed });
  }
  const language = preambleLanguage(spec.spec.language);
  if (!language) {
    throw new WorkerError(
      "unknown_engine",
      `engine ${JSON.stringify(engine)} runs ${spec.spec.language ?? "an unknown language"}; Sense workers need a Python or JavaScript/TypeScript kernel (installed: ${installed.join(", ")})`,
      { engine, installed },
    );
  }
  const sense = language === "javascript" && typeof spec.spec.metadata?.sense === "object" && spec.spec.metadata.sense !== null;
  const masterLanguage = masterEngine && Object.hasOwn(specs.kernelspecs, masterEngine) ? specs.kernelspecs[masterEngine].spec.language : undefined;
  return { engine, kernelName: kernelSpecForSize(gatewayInfoFromSpecs(specs), engine, plan.size), language, masterEngine, masterLanguage, sense };
}

/**
 * For a Sense engine, startup code is made JavaScript here in the master, once, before anything
 * launches, and marked precompiled: no worker loads a compiler for it. TypeScript (from a `.ts`
 * script, or from a TypeScript master) is type-checked and transpiled; JavaScript is sent as is,
 * marked, unless it has ES module syntax (`import`/`export`), which only the kernel's converter
 * handles. `checkIn` is the folder imports resolve from (the workers' folder).
 * @throws UsageError `compile_error` listing the errors with line and column.
 */
export function prepareCode(plan: LaunchPlan, sense: boolean, masterLanguage: string | undefined, checkIn: string): LaunchPlan {
  if (!sense || !plan.code.trim()) return plan;
  const typescript = plan.codeSource ? /\.(c|m)?tsx?$/.test(plan.codeSource) : masterLanguage === "typescript";
  if (!typescript) return { ...plan, precompiled: !/^\s*(import|export)\b/m.test(plan.code) };
  const fileName = path.join(checkIn, plan.codeSource ? path.basename(plan.codeSource) : "__startup.ts");
  return { ...plan, code: checkAndTranspile(plan.code, { fileName }).js, precompiled: true };
}
