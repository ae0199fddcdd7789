/**
 * The Jupyter wire protocol (messaging 5.3), every Sense kernel's and the direct backend's client:
 * connection files, parsing and HMAC-SHA256 signing of multipart messages, and a send queue per
 * ZeroMQ socket. No TypeScript, no tslab.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";

/** The connection file Jupyter writes for a kernel (`--config-path`). */
export interface ConnectionInfo {
  transport: string;
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  signature_scheme: string;
}

/** A connection file as written for a kernel: its {@link ConnectionInfo} and its kernelspec name. */
export type ConnectionFile = ConnectionInfo & { kernel_name: string };

/**
 * Writes a new connection file for a kernel of `kernelName` listening on `ip` at `ports` (shell,
 * iopub, stdin, control, hb), with a fresh 256-bit HMAC key, and returns what it wrote. The file
 * is created with mode 0600 and never replaces one (`wx`): the key is never readable by others,
 * not even for a moment. @throws the file system's error (EEXIST included).
 */
export function writeConnectionFile(file: string, ip: string, ports: readonly [number, number, number, number, number], kernelName: string): ConnectionFile {
  const [shell, iopub, stdin, control, hb] = ports;
  const info: ConnectionFile = {
    transport: "tcp",
    ip,
    shell_port: shell,
    iopub_port: iopub,
    stdin_port: stdin,
    control_port: control,
    hb_port: hb,
    key: randomBytes(32).toString("hex"),
    signature_scheme: "hmac-sha256",
    kernel_name: kernelName,
  };
  fs.writeFileSync(file, JSON.stringify(info, null, 2), { mode: 0o600, flag: "wx" });
  return info;
}

/** A message header. */
export interface Header {
  msg_id: string;
  session: string;
  username: string;
  msg_type: string;
  version: string;
  date: string;
}

/** One decoded message. */
export interface Message {
  identities: Buffer[];
  header: Header;
  parent: Header | Record<string, never>;
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
  buffers: Buffer[];
}

const DELIM = Buffer.from("<IDS|MSG>");

/** A message failed to decode or its signature did not match. */
export class WireError extends Error {
  override name = "WireError";
}

/** Signs and (de)serialises messages with one kernel's key. */
export class Codec {
  private readonly key: Buffer;
  private readonly session = randomBytes(16).toString("hex");

  constructor(info: ConnectionInfo) {
    if (info.signature_scheme && info.signature_scheme !== "hmac-sha256") {
      throw new WireError(`unsupported signature scheme ${info.signature_scheme}`);
    }
    this.key = Buffer.from(info.key, "utf8");
  }

  private sign(parts: (string | Buffer)[]): string {
    if (this.key.length === 0) return "";
    const h = createHmac("sha256", this.key);
    for (const p of parts) h.update(p);
    return h.digest("hex");
  }

  /**
   * Decodes a multipart message received on a ROUTER socket.
   * @throws WireError when the delimiter is missing or the signature is wrong.
   */
  decode(frames: Buffer[]): Message {
    const at = frames.findIndex((f) => f.equals(DELIM));
    if (at < 0 || frames.length < at + 6) throw new WireError("message without delimiter or parts");
    const signature = frames[at + 1];
    const parts = frames.slice(at + 2, at + 6);
    const expected = Buffer.from(this.sign(parts), "utf8");
    if (this.key.length > 0 && (expected.length !== signature.length || !timingSafeEqual(expected, signature))) {
      throw new WireError("bad message signature");
    }
    return {
      identities: frames.slice(0, at),
      header: JSON.parse(parts[0].toString("utf8")) as Header,
      parent: JSON.parse(parts[1].toString("utf8")) as Header,
      metadata: JSON.parse(parts[2].toString("utf8")) as Record<string, unknown>,
      content: JSON.parse(parts[3].toString("utf8")) as Record<string, unknown>,
      buffers: frames.slice(at + 6),
    };
  }

  /** Encodes a new message of type `msgType` in reply to `parent` (routed to its identities when `routed`). */
  encode(msgType: string, content: unknown, parent: Message | null, routed: boolean, metadata: Record<string, unknown> = {}, msgId = randomBytes(16).toString("hex")): (Buffer | string)[] {
    const header: Header = {
      msg_id: msgId,
      session: parent?.header.session ?? this.session,
      username: parent?.header.username ?? "kernel",
      msg_type: msgType,
      version: "5.3",
      date: new Date().toISOString(),
    };
    const parts = [JSON.stringify(header), JSON.stringify(parent ? parent.header : {}), JSON.stringify(metadata), JSON.stringify(content)];
    const ids = routed && parent ? parent.identities : [];
    return [...ids, "<IDS|MSG>", this.sign(parts), ...parts];
  }
}

/** Anything with zeromq 6's `send`. */
export interface Sendable {
  send(frames: (Buffer | string)[]): Promise<void>;
}

/**
 * Sends on one socket configured with `sendTimeout: 0`: zeromq 6 then hands every message to
 * libzmq synchronously (never "busy writing"), so iopub order is the order output was produced
 * and a long synchronous cell still gets its 64 KiB flushes onto the wire while it runs.
 */
export class SendQueue {
  constructor(
    private readonly socket: Sendable,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Sends `frames` now; resolves once ZeroMQ took them (errors go to `onError`). */
  send(frames: (Buffer | string)[]): Promise<void> {
    try {
      return this.socket.send(frames).catch(this.onError);
    } catch (e) {
      this.onError(e);
      return Promise.resolve();
    }
  }
}
