/**
 * Objects that render themselves in a notebook: one {@link Displayable.toMimeBundle} feeds the
 * hooks of every host we know, so the same object shows well in tslab, Deno and ijavascript.
 */
import type { MimeBundle } from "./sink";

/** Anything that can produce a MIME bundle (`text/plain` always, usually `text/html` too). */
export interface Displayable {
  toMimeBundle(): MimeBundle;
}

/** The `util.inspect.custom` symbol, by its registry key so this works without importing `util`. */
export const INSPECT_CUSTOM = Symbol.for("nodejs.util.inspect.custom");
/** Deno's Jupyter kernel calls this to get a bundle. */
export const JUPYTER_DISPLAY = Symbol.for("Jupyter.display");

/** True for objects with a callable `toMimeBundle`. */
export function isDisplayable(value: unknown): value is Displayable {
  return (
    typeof value === "object" && value !== null && typeof (value as { toMimeBundle?: unknown }).toMimeBundle === "function"
  );
}

const MIME_TYPE = /^[\w.+-]+\/[\w.+-]+$/;

/**
 * True for a plain MIME bundle: a non-empty object whose every key is a MIME type, with a
 * string `text/plain`. `partial: true` also accepts a bundle without `text/plain` (an image
 * alone is a valid Jupyter display; only a kernel that sends it as is may accept it).
 */
export function isMimeBundle(value: unknown, options: { partial?: boolean } = {}): value is MimeBundle {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (!keys.length || !keys.every((k) => MIME_TYPE.test(k))) return false;
  const plain = (value as Record<string, unknown>)["text/plain"];
  return typeof plain === "string" || (!!options.partial && plain === undefined);
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * Gives `target` the three host hooks, all derived from `toBundle`: `[util.inspect.custom]`
 * (tslab prints a cell's last value with `console.log`: this makes it print the text/plain
 * form), `[Symbol.for("Jupyter.display")]` (Deno) and `_toMime()` (ijavascript/nel), plus
 * `toMimeBundle()` itself. The hooks are non-enumerable, so JSON and spreading ignore them.
 * Returns `target`.
 */
export function makeDisplayable<T extends object>(target: T, toBundle: () => MimeBundle): T & Displayable {
  const hooks: [PropertyKey, () => unknown][] = [
    ["toMimeBundle", toBundle],
    [INSPECT_CUSTOM, () => toBundle()["text/plain"]],
    [JUPYTER_DISPLAY, toBundle],
    ["_toMime", toBundle],
  ];
  for (const [key, value] of hooks) {
    Object.defineProperty(target, key, { value, enumerable: false, configurable: true, writable: true });
  }
  return target as T & Displayable;
}

/** A fixed bundle as a displayable object. */
export function displayableBundle(bundle: MimeBundle): Displayable {
  return makeDisplayable({}, () => bundle);
}
