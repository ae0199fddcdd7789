/**
 * The V8 heap limit a JavaScript worker gets from its memory size: what can be enforced cheaply
 * without containers (a Node flag, `--max-old-space-size`), and inside a container what makes a
 * runaway JavaScript heap end with V8's own "heap out of memory" before the cgroup's OOM killer
 * takes the whole kernel without a word. A quarter of the memory stays for everything outside the
 * old space (code, buffers, the young generation, Node itself).
 */
import { UsageError } from "../errors";

/** Share of a size's memory given to V8's old space. */
export const HEAP_SHARE = 0.75;

/**
 * `--max-old-space-size` in MiB for `memoryMiB` of memory. Pure.
 * @throws UsageError (`bad_option`) for a memory size that is not a positive finite number.
 */
export function heapLimitMiB(memoryMiB: number): number {
  if (typeof memoryMiB !== "number" || !Number.isFinite(memoryMiB) || memoryMiB <= 0) throw new UsageError(`memoryMiB must be a positive number, not ${JSON.stringify(memoryMiB)}`, { code: "bad_option" });
  return Math.max(16, Math.floor(memoryMiB * HEAP_SHARE));
}

/** `NODE_OPTIONS` with the heap flag added, unless it already sets one (an explicit choice wins). Pure. */
export function withHeapLimit(nodeOptions: string | undefined, heapMiB: number): string {
  const current = (nodeOptions ?? "").trim();
  if (/--max-old-space-size[=\s]/.test(current)) return current;
  return [current, `--max-old-space-size=${heapMiB}`].filter(Boolean).join(" ");
}
