#!/usr/bin/env node
/**
 * Enterprise Gateway kernel launcher for the Sense kernels (`sense-ts`, `sense-js`), the Node
 * counterpart of EG's `launch_ipykernel.py`. EG's remote process proxies (distributed/SSH,
 * Kubernetes, Docker, YARN) run it on the kernel's host with `--kernel-id`, `--response-address`,
 * `--public-key` and `--port-range`; it
 *  1. picks the 5 kernel ports and a communication port inside the range, writes a connection file;
 *  2. starts the Sense kernel on that file (a child process in the launcher's process group);
 *  3. sends the connection info, encrypted for EG, to the response address;
 *  4. serves EG's communication port: `{"signum": n}` signals the kernel (0 = liveness poll,
 *     answered by accepting the connection), `{"shutdown": 1}` ends listening.
 * The launcher lives exactly as long as the kernel, so EG's liveness poll sees the kernel's life.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { writeConnectionFile } from "../../src/protocol/wire";
import { encryptConnectionInfo, exitStatus, kernelListenIp, LauncherArgs, listenInRange, ownProcessGroup, parseLauncherArgs, parseListenerRequest, runMain, selectPorts } from "./protocol";

function log(message: string): void {
  // stderr ends up in EG's kernel log (EG_KERNEL_LOG_DIR/kernel-<id>.log)
  process.stderr.write(`[sense-eg-launcher ${new Date().toISOString()}] ${message}\n`);
}

async function sendConnectionInfo(args: LauncherArgs, info: Record<string, unknown>): Promise<void> {
  const addr = args.responseAddress;
  if (!addr) return;
  const payload = encryptConnectionInfo(JSON.stringify(info), args.publicKey);
  await new Promise<void>((resolve, reject) => {
    const sock: net.Socket = net.connect({ host: addr.host, port: addr.port }, () => sock.end(payload));
    sock.on("error", reject);
    sock.on("close", (hadError: boolean) => (hadError ? undefined : resolve()));
  });
}

async function main(): Promise<number> {
  const args = parseLauncherArgs(process.argv.slice(2));
  const ip = kernelListenIp();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sense-eg-${args.kernelId}-`));
  const connectionFile = path.join(dir, `kernel-${args.kernelId}.json`);
  const [shell, iopub, stdin, control, hb] = await selectPorts(5, args.portRange);
  const conn = writeConnectionFile(connectionFile, ip, [shell, iopub, stdin, control, hb], args.kernelName);

  const comm = net.createServer();
  const commPort = await listenInRange(comm, args.portRange, 5, ip);

  const kernelScript = path.resolve(__dirname, "..", "kernel.js");
  const watch = path.join(__dirname, "parent-watch.js");
  const kernelArgv = ["-r", watch, kernelScript, "--config-path", connectionFile, ...(args.kernelName === "sense-js" ? ["--js"] : [])];
  const child: ChildProcess = spawn(process.execPath, kernelArgv, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, SENSE_EG_LAUNCHER_PID: String(process.pid) },
  });
  log(`kernel ${args.kernelId} (${args.kernelName}) pid ${child.pid}, comm port ${commPort}`);
  const exited = new Promise<number>((resolve) =>
    child.on("exit", (code, signal) => resolve(exitStatus(code, signal))),
  );

  const signalKernel = (signum: number) => {
    if (signum === 0 || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(child.pid ?? -1, signum);
    } catch (e) {
      log(`signal ${signum} to kernel failed: ${(e as Error).message}`);
    }
  };
  comm.on("connection", (sock) => {
    let data = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (data += d));
    sock.on("error", () => undefined);
    sock.on("end", () => {
      const request = parseListenerRequest(data);
      if (!request) return;
      if ("signum" in request) {
        if (request.signum !== 0) log(`signal ${request.signum} requested`);
        signalKernel(request.signum);
      } else {
        log("shutdown requested: closing the communication port");
        comm.close();
        // EG follows up with a kernel shutdown or kill of our process group; a kernel still
        // running long after that is stuck, and must not outlive its launcher.
        setTimeout(() => signalKernel(9), 15_000).unref();
      }
    });
  });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => signalKernel(os.constants.signals[sig]));

  const info = { ...conn, pid: process.pid, pgid: ownProcessGroup(), comm_port: commPort, kernel_id: args.kernelId };
  try {
    await sendConnectionInfo(args, info);
  } catch (e) {
    log(`cannot send connection info to ${args.responseAddress?.host}:${args.responseAddress?.port}: ${(e as Error).message}`);
    signalKernel(9);
  }
  const code = await exited;
  comm.close();
  fs.rmSync(dir, { recursive: true, force: true });
  log(`kernel ${args.kernelId} exited (${code})`);
  return code;
}

if (require.main === module) runMain(main, log);
