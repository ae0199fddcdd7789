import { spawnSync } from "node:child_process";
import * as fs from "node:fs";

/** An SSH host set up by scripts/ssh-host.sh: a network namespace of this machine running its own sshd (its host.json). */
export interface SshHost {
  netns: string;
  hostIp: string;
  remoteIp: string;
  user: string;
  home: string;
  sshdPidFile: string;
}

/** An {@link SshHost} with the pid of its sshd listener read. */
export type SshHostUp = SshHost & { sshdPid: number };

/**
 * Reads an SSH host's host.json and the pid of its sshd.
 *
 * @throws the `fs` error when either file cannot be read, a SyntaxError when host.json is not JSON.
 */
export function readSshHost(file: string): SshHostUp {
  const h = JSON.parse(fs.readFileSync(file, "utf8")) as SshHost;
  return { ...h, sshdPid: Number(fs.readFileSync(h.sshdPidFile, "utf8").trim()) };
}

/**
 * Pids of every process in a network namespace (`ip netns pids`, argv, no shell).
 *
 * @throws Error when `ip` fails (no such namespace, no permission).
 */
export function netnsPids(netns: string): number[] {
  const r = spawnSync("ip", ["netns", "pids", netns], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip netns pids ${netns}: ${r.stderr}`);
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/**
 * Every process on a host but its sshd listener: what a test left there.
 *
 * @throws as {@link netnsPids}.
 */
export function leftovers(h: SshHostUp): number[] {
  return netnsPids(h.netns).filter((p) => p !== h.sshdPid);
}

/** The network namespace a pid lives in (`ip netns identify`), "" for the root namespace. Throws nothing. */
export function netnsOf(pid: number): string {
  return spawnSync("ip", ["netns", "identify", String(pid)], { encoding: "utf8" }).stdout.trim();
}
