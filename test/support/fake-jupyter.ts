/**
 * The one fake Jupyter Server of the unit tests: a loopback HTTP server whose answers a test
 * sets per request, recording every request it got. For REST error paths the unit tests use
 * nock instead; for "it works" claims, the integration tests use a real Jupyter Server.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** One request the fake got. */
export interface SeenRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** The JSON body, parsed (undefined when empty). */
  body: unknown;
  /** The raw body text. */
  text: string;
  authorization?: string;
}

/** An answer: status, JSON body (a string is sent as is), headers, and an optional delay. */
export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** Decides the answer to a request; `undefined` answers 599 "unexpected request". */
export type FakeHandler = (req: SeenRequest) => FakeReply | undefined;

/** A running fake server. */
export interface FakeJupyter {
  /** `http://127.0.0.1:<port><prefix>`, ending with `/`. */
  baseUrl: string;
  /** Every request so far (tests may empty it). */
  seen: SeenRequest[];
  /** The current handler (tests replace it). */
  handler: FakeHandler;
  close(): Promise<void>;
}

/** Starts the fake on a free loopback port; `prefix` is the server's base_url (default `/`). */
export async function startFakeJupyter(options: { prefix?: string; handler?: FakeHandler } = {}): Promise<FakeJupyter> {
  const prefix = options.prefix ?? "/";
  const fake: FakeJupyter = { baseUrl: "", seen: [], handler: options.handler ?? (() => undefined), close: async () => undefined };
  const server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (d: Buffer) => (text += d.toString()));
    req.on("end", () => {
      let body: unknown;
      try {
        body = text ? (JSON.parse(text) as unknown) : undefined;
      } catch {
        body = undefined;
      }
      const seen: SeenRequest = { method: req.method ?? "", url: req.url ?? "", body, text, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
      fake.seen.push(seen);
      const reply = fake.handler(seen) ?? { status: 599, body: { message: "unexpected request" } };
      const send = () => {
        const payload = reply.body === undefined ? "" : typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
        res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
        res.end(payload);
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}`;
  fake.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return fake;
}
