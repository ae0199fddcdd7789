/**
 * The kernel websocket client negotiates subprotocols as a browser does (src/backends/jupyter/connection.ts):
 * a server may pick one of the offered subprotocols or none. A Jupyter Server in front of
 * Enterprise Gateway picks none; plain `ws` would fail that handshake after the server accepted it.
 * It also acknowledges incoming messages at once with an unsolicited pong (the server's Nagle
 * algorithm otherwise holds a reply's later messages for the client's 40 ms delayed ACK).
 */
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import type { Kernel } from "@jupyterlab/services";
import { ServerConnection } from "@jupyterlab/services";
import { browserLikeWebSocket, countDue, guardKernelInfo, sharedSettingsConnector } from "../../../../src/backends/jupyter/connection";

const V1 = "v1.kernel.websocket.jupyter.org";

/** A websocket server on a free loopback port whose subprotocol choice is `choose`; records the request headers. */
async function serverChoosing(choose: (offered: Set<string>) => string | false) {
  const seen: { protocol?: string; authorization?: string }[] = [];
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: (offered) => choose(offered) });
  wss.on("connection", (socket, req) => {
    seen.push({ protocol: req.headers["sec-websocket-protocol"], authorization: req.headers.authorization });
    socket.send("hello");
  });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/api/kernels/k/channels`;
  return { url, seen, close: () => new Promise<void>((resolve) => wss.close(() => resolve())) };
}

/** Connects and resolves with the negotiated protocol and the first message, or rejects with the handshake error. */
function connect(url: string, protocols: string[] | undefined): Promise<{ protocol: string; first: string }> {
  const Socket = browserLikeWebSocket({ Authorization: "token secret-test-token" });
  const ws = new Socket(url, protocols);
  return new Promise((resolve, reject) => {
    ws.once("error", reject);
    ws.once("message", (data) => {
      resolve({ protocol: ws.protocol, first: String(data) });
      ws.close();
    });
  });
}

describe("browserLikeWebSocket", () => {
  it("accepts a server that picks no subprotocol (a gateway-backed Jupyter Server): protocol ''", async () => {
    const srv = await serverChoosing(() => false);
    try {
      await expect(connect(srv.url, [V1])).resolves.toEqual({ protocol: "", first: "hello" });
      // the offer and the token went in the request headers
      expect(srv.seen).toEqual([{ protocol: V1, authorization: "token secret-test-token" }]);
    } finally {
      await srv.close();
    }
  });

  it("reports the subprotocol the server picked from the offer (a plain Jupyter Server)", async () => {
    const srv = await serverChoosing((offered) => (offered.has(V1) ? V1 : false));
    try {
      await expect(connect(srv.url, [V1])).resolves.toEqual({ protocol: V1, first: "hello" });
    } finally {
      await srv.close();
    }
  });

  it("fails the handshake when the server picks a subprotocol that was not offered", async () => {
    const srv = await serverChoosing(() => "v9.other");
    try {
      await expect(connect(srv.url, [V1])).rejects.toThrow(/subprotocol/);
    } finally {
      await srv.close();
    }
  });

  it("offers nothing when given nothing, and then accepts no subprotocol", async () => {
    const srv = await serverChoosing(() => false);
    try {
      await expect(connect(srv.url, undefined)).resolves.toEqual({ protocol: "", first: "hello" });
      expect(srv.seen[0].protocol).toBeUndefined();
    } finally {
      await srv.close();
    }
  });
});

describe("prompt acknowledgement (unsolicited pongs)", () => {
  /** A server that sends `burst` messages `bursts` times (the next burst after a pong to the last) and counts pongs. */
  async function pongsFor(bursts: number, burst: number): Promise<{ pongs: number; messages: number }> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    let pongs = 0;
    const done = new Promise<void>((resolve) => {
      wss.on("connection", (socket) => {
        let left = bursts;
        let waiting = false;
        const send = () => {
          waiting = true;
          for (let i = 0; i < burst; i++) socket.send(`m${i}`);
        };
        socket.on("pong", () => {
          pongs++;
          if (!waiting) return;
          waiting = false;
          if (--left > 0) send();
          else resolve();
        });
        send();
      });
    });
    const Socket = browserLikeWebSocket({});
    const ws = new Socket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/api/kernels/k/channels`);
    let messages = 0;
    ws.on("message", () => messages++);
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the server got ${pongs} pong(s) for ${bursts} burst(s) of messages`)), 3_000)));
    try {
      await Promise.race([done, stuck]);
      // no pong follows without a message: give a stray one the time to arrive
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { pongs, messages };
    } finally {
      clearTimeout(timer);
      ws.close();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  }

  it("answers every message that arrives alone with a pong, and nothing else", async () => {
    // without the pongs the server waits for the first one in vain
    await expect(pongsFor(5, 1)).resolves.toEqual({ pongs: 5, messages: 5 });
  });

  it("with a due count: no pong for a burst that arrives while nothing is due, one per burst again once something is", async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    let due = false;
    const Socket = browserLikeWebSocket({}, () => due);
    let ws: InstanceType<typeof Socket> | undefined;
    try {
      // The server notes which burst it had sent when each pong came; the client's frames arrive in order,
      // so a pong for the first burst would come before its request for the second.
      const pongsAfter: number[] = [];
      const served = new Promise<void>((resolve) => {
        wss.on("connection", (socket) => {
          let burst = 1;
          socket.on("pong", () => {
            pongsAfter.push(burst);
            resolve();
          });
          socket.on("message", () => {
            burst = 2;
            for (let i = 0; i < 3; i++) socket.send(`b2-${i}`);
          });
          for (let i = 0; i < 3; i++) socket.send(`b1-${i}`);
        });
      });
      ws = new Socket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/api/kernels/k/channels`);
      const client = ws;
      let got = 0;
      client.on("message", () => {
        if (++got !== 3) return;
        // the first burst is in and handled (its pong, if any, would be decided now); then a request is due
        setImmediate(() => {
          due = true;
          client.send("next");
        });
      });
      await served;
      expect(pongsAfter).toEqual([2]);
    } finally {
      ws?.close();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });

  it("counts a connection's requests as due from their send until their future settles, answered or cancelled", async () => {
    const settle: { ok: () => void; cancel: () => void }[] = [];
    const send = () => {
      let ok: () => void = () => undefined;
      let cancel: () => void = () => undefined;
      const done = new Promise<void>((resolve, reject) => ((ok = resolve), (cancel = () => reject(new Error("Canceled future")))));
      settle.push({ ok, cancel });
      return { done };
    };
    const conn = { sendShellMessage: send, sendControlMessage: send } as unknown as Kernel.IKernelConnection;
    let due = 0;
    countDue(conn, (n) => (due += n));
    conn.sendShellMessage({} as never, true);
    conn.sendControlMessage({} as never, true);
    conn.sendShellMessage({} as never, true);
    expect(due).toBe(3);
    settle[0].ok();
    settle[1].cancel();
    await new Promise((resolve) => setImmediate(resolve));
    expect(due).toBe(1);
    settle[2].ok();
    await new Promise((resolve) => setImmediate(resolve));
    expect(due).toBe(0);
  });

  it("answers a burst with one pong, not one per message", async () => {
    const r = await pongsFor(3, 50);
    expect(r.messages).toBe(150);
    // each burst is sent in one go; the client may read it in a few chunks, never 50
    expect(r.pongs).toBeGreaterThanOrEqual(3);
    expect(r.pongs).toBeLessThan(30);
  });
});

describe("guardKernelInfo: the library's own fire-and-forget calls cannot reject unhandled", () => {
  /** The two methods @jupyterlab/services calls with `void` (on connect and after an auto-restart). */
  function fakeConnection(disposed: boolean) {
    const conn = {
      isDisposed: disposed,
      requestKernelInfo: () => Promise.reject(new Error("Canceled future for kernel_info_request message before replies were done")),
      reconnect: () => Promise.reject(new Error("Kernel connection disconnected")),
    };
    return guardKernelInfo(conn as unknown as Kernel.IKernelConnection);
  }

  it("a reconnect ended by disposing the connection resolves (an auto-restarted kernel's connection closed)", async () => {
    await expect(fakeConnection(true).reconnect()).resolves.toBeUndefined();
  });

  it("a reconnect failing on a live connection still rejects (its callers must hear it)", async () => {
    await expect(fakeConnection(false).reconnect()).rejects.toThrow("Kernel connection disconnected");
  });

  it("a cancelled kernel_info request resolves undefined", async () => {
    await expect(fakeConnection(false).requestKernelInfo()).resolves.toBeUndefined();
  });
});

describe("sharedSettingsConnector: server settings made once per endpoint", () => {
  test("connections of one launch share what makeSettings made; another endpoint or token gets its own; each keeps its own WebSocket class", async () => {
    // A loopback port: the connections try, and are disposed; only their settings matter here.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    const base = `http://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    const made = jest.spyOn(ServerConnection, "makeSettings");
    const connect = sharedSettingsConnector();
    const conns = [
      connect({ baseUrl: base, token: "t1" }, { id: "k1", name: "sense-ts" }),
      connect({ baseUrl: base, token: "t1" }, { id: "k2", name: "sense-ts" }),
      connect({ baseUrl: base, token: "t1" }, { id: "k3", name: "sense-ts" }),
      connect({ baseUrl: base, token: "t2" }, { id: "k4", name: "sense-ts" }),
    ];
    try {
      // one per endpoint and token, not one per connection
      expect(made).toHaveBeenCalledTimes(2);
      expect(conns[1].serverSettings.baseUrl).toBe(base);
      expect(conns[3].serverSettings.token).toBe("t2");
      // each connection's WebSocket counts that connection's own requests
      expect(conns[1].serverSettings.WebSocket).not.toBe(conns[0].serverSettings.WebSocket);
    } finally {
      made.mockRestore();
      for (const c of conns) c.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});
