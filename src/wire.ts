/**
 * The size limit of one message from a client to a kernel through the Jupyter Server: tornado's
 * websocket `max_message_size` (10 MiB by default; jupyter_server does not raise it). A bigger
 * message is dropped by the server without a word, so the code or data that needed it never runs:
 * Sense refuses such a message before sending it instead.
 */
import { UsageError } from "./errors";

/** tornado's default `websocket_max_message_size`, bytes. */
export const WEBSOCKET_MESSAGE_LIMIT = 10 * 1024 * 1024;

/** Room kept for the message's header, metadata and framing. */
const ENVELOPE_BYTES = 16 * 1024;

/** Bytes a payload of `bytes` may have so that its message still fits {@link WEBSOCKET_MESSAGE_LIMIT}. */
export const WIRE_PAYLOAD_LIMIT = WEBSOCKET_MESSAGE_LIMIT - ENVELOPE_BYTES;

/**
 * Throws when the JSON content of a message to a kernel would not fit through the server's websocket.
 * @throws UsageError `too_large` naming `what`, its size and the limit.
 */
export function checkWireSize(content: unknown, what: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(content) ?? "", "utf8");
  if (bytes > WIRE_PAYLOAD_LIMIT) {
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
    throw new UsageError(
      `${what} is ${mib(bytes)} as a message, more than the ${mib(WEBSOCKET_MESSAGE_LIMIT)} the Jupyter Server accepts per websocket message (tornado's max_message_size); nothing was sent`,
      { code: "too_large", details: { bytes, limit: WEBSOCKET_MESSAGE_LIMIT } },
    );
  }
}
