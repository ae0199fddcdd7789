/**
 * Choosing several free TCP ports at once: every socket is held open until all are chosen (so no
 * port repeats), then all are released, as jupyter_client does for a kernel's five ports.
 */
import * as net from "node:net";

/** Listens on any free port of `ip`; resolves with it. */
export function listenAnyPort(ip: string): (s: net.Server) => Promise<number> {
  return (s) =>
    new Promise<number>((resolve, reject) => {
      s.once("error", reject);
      s.listen(0, ip, () => resolve((s.address() as net.AddressInfo).port));
    });
}

/**
 * `count` distinct ports, each found by `listen` on a fresh server; all released before resolving.
 * @throws whatever `listen` throws (no port could be had).
 */
export async function holdPorts(count: number, listen: (s: net.Server) => Promise<number>): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      ports.push(await listen(s));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}
