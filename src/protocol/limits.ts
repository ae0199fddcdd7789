/**
 * Limits of the Jupyter wire that Sense must respect before it sends anything. One place, so
 * every sender (worker startup code, remote execution payloads) checks the same numbers.
 */
import { UsageError } from "../errors";

/**
 * The largest websocket message a Jupyter Server accepts: tornado's `websocket_max_message_size`
 * default (10 MiB), which jupyter_server keeps. A bigger message makes tornado close the socket;
 * the client reconnects and the message is gone, with no error anywhere (an execute request
 * that silently never runs).
 */
export const JUPYTER_WS_MESSAGE_LIMIT_BYTES = 10 * 1024 * 1024;

/**
 * Room kept for what travels with the content: header, parent header, metadata, the JSON or
 * binary framing. Headers are well under 1 KiB; the rest is margin.
 */
export const WIRE_ENVELOPE_BYTES = 64 * 1024;

/** The most content (serialised as JSON, UTF-8) one message may carry: {@link JUPYTER_WS_MESSAGE_LIMIT_BYTES} minus {@link WIRE_ENVELOPE_BYTES}. */
export const MAX_MESSAGE_CONTENT_BYTES = JUPYTER_WS_MESSAGE_LIMIT_BYTES - WIRE_ENVELOPE_BYTES;

/** Bytes of `content` as it travels in a kernel message (JSON, UTF-8; escapes counted). */
export function wireBytes(content: unknown): number {
  return Buffer.byteLength(JSON.stringify(content) ?? "");
}

/**
 * Checks that a message whose content is `content` fits through the Jupyter Server's websocket;
 * returns its size in bytes. `what` names it in the error (`"startup code"`, `"the map payload"`).
 * @throws UsageError `too_large` naming the size and the 10 MiB limit; nothing was sent.
 */
export function checkWireSize(what: string, content: unknown): number {
  const bytes = wireBytes(content);
  if (bytes > MAX_MESSAGE_CONTENT_BYTES) {
    const mib = (b: number) => (b / (1024 * 1024)).toFixed(1);
    throw new UsageError(
      `${what} is ${mib(bytes)} MiB as a kernel message; the Jupyter Server's websocket takes at most ${mib(JUPYTER_WS_MESSAGE_LIMIT_BYTES)} MiB a message ` +
        `(tornado's websocket_max_message_size), so it would be dropped without an error. Put the data in a file in the project home and read it from the code instead.`,
      { code: "too_large", details: { bytes, limit: MAX_MESSAGE_CONTENT_BYTES } },
    );
  }
  return bytes;
}
