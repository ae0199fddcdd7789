/**
 * The content of a `usage_reply`, as ipykernel (≥ 6.11) answers a `usage_request` on the control
 * channel: what JupyterLab's Kernel Usage panel (jupyter-resource-usage) and Sense's own tables
 * show. Figures of the whole kernel process tree (the kernel and every process below it, e.g. a
 * `child_process` a cell started), read from /proc on Linux; elsewhere the kernel process alone.
 *
 * CPU percentages are over the time since the previous request (the first one: since the kernel
 * process started), summed over the tree's processes, so 200 means two cores busy, as psutil's
 * `cpu_percent` summed by ipykernel does.
 */
import * as fs from "node:fs";
import * as os from "node:os";

/** `host_virtual_memory`: psutil's `virtual_memory()` fields (bytes, percent used). */
export interface HostVirtualMemory {
  total: number;
  available: number;
  percent: number;
  used: number;
  free: number;
  [field: string]: number;
}

/** A `usage_reply`'s content. */
export interface UsageReplyContent {
  hostname: string;
  pid: number;
  /** CPU % of the kernel's process tree since the previous request (100 = one core). */
  kernel_cpu: number;
  /** Resident memory of the kernel's process tree, bytes. */
  kernel_memory: number;
  /** The host's CPU % (all cores, 0-100) since the previous request; absent on the first one, as ipykernel leaves it out. */
  host_cpu_percent?: number;
  cpu_count: number;
  host_virtual_memory: HostVirtualMemory;
}

/** Linux's USER_HZ: the unit of utime/stime in /proc/<pid>/stat, 100 on every Linux ABI. */
const USER_HZ = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, seconds. */
  cpuSeconds: number;
  /** Start time, seconds after boot. */
  startSeconds: number;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone or the file is not of that form. */
function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, starttime 22.
  const ppid = Number(f[1]);
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const start = Number(f[19]);
  if (![ppid, utime, stime, start].every(Number.isFinite)) return undefined;
  return { pid, ppid, cpuSeconds: (utime + stime) / USER_HZ, startSeconds: start / USER_HZ };
}

/** Resident set size of a process in bytes (VmRSS), 0 when it is gone. */
function readRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Every process below `root` (children, their children, ...), from one scan of /proc. */
function descendants(root: number): ProcStat[] {
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return [];
  }
  const byParent = new Map<number, ProcStat[]>();
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (!s) continue;
    const list = byParent.get(s.ppid);
    if (list) list.push(s);
    else byParent.set(s.ppid, [s]);
  }
  const out: ProcStat[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of byParent.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

function uptimeSeconds(): number {
  try {
    return Number(fs.readFileSync("/proc/uptime", "latin1").split(" ")[0]);
  } catch {
    return os.uptime();
  }
}

/** psutil's `virtual_memory()` from /proc/meminfo (os.totalmem/freemem elsewhere). */
function hostMemory(): HostVirtualMemory {
  const kb = new Map<string, number>();
  try {
    for (const line of fs.readFileSync("/proc/meminfo", "latin1").split("\n")) {
      const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
      if (m) kb.set(m[1], Number(m[2]) * 1024);
    }
  } catch {
    // not Linux: the os module's two figures below
  }
  const total = kb.get("MemTotal") ?? os.totalmem();
  const free = kb.get("MemFree") ?? os.freemem();
  const available = kb.get("MemAvailable") ?? free;
  const used = total - available;
  const mem: HostVirtualMemory = { total, available, percent: total > 0 ? Math.round((used / total) * 1000) / 10 : 0, used, free };
  const extra: [string, string][] = [["active", "Active"], ["inactive", "Inactive"], ["buffers", "Buffers"], ["cached", "Cached"], ["shared", "Shmem"], ["slab", "Slab"]];
  for (const [field, key] of extra) {
    const v = kb.get(key);
    if (v !== undefined) mem[field] = v;
  }
  return mem;
}

/** Busy and total CPU time of the host over all cores, milliseconds. */
function hostTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * Answers `usage_request`s for this process. Keeps the previous sample so each reply's CPU
 * figures are over the time since the previous request (ipykernel keeps psutil processes for the
 * same reason).
 */
export class UsageMeter {
  /** Per pid: start time (tells a reused pid apart) and CPU seconds at the previous sample. */
  private previous = new Map<number, { start: number; cpu: number }>();
  private previousAt: number | null = null;
  private previousHost: { busy: number; total: number } | null = null;

  constructor(private readonly pid: number = process.pid) {}

  /** The reply's content now. Never throws: figures that cannot be read count as 0. */
  sample(): UsageReplyContent {
    const now = uptimeSeconds();
    const self = readStat(this.pid);
    const tree = self ? [self, ...descendants(this.pid)] : [];
    let kernelCpu = 0;
    let memory = 0;
    const next = new Map<number, { start: number; cpu: number }>();
    if (tree.length === 0) {
      // No /proc: this process alone, over its whole life on the first request.
      const cpu = process.cpuUsage();
      const seconds = (cpu.user + cpu.system) / 1e6;
      const before = this.previous.get(this.pid);
      const since = this.previousAt ?? now - process.uptime();
      kernelCpu = ((seconds - (before?.cpu ?? 0)) / Math.max(now - since, 1e-3)) * 100;
      next.set(this.pid, { start: 0, cpu: seconds });
      memory = process.memoryUsage.rss();
    } else {
      for (const p of tree) {
        const before = this.previous.get(p.pid);
        const known = before !== undefined && before.start === p.startSeconds;
        // A process new since the previous sample is measured from its own start.
        const since = known && this.previousAt !== null ? this.previousAt : p.startSeconds;
        const base = known ? before.cpu : 0;
        const span = now - since;
        if (span > 0) kernelCpu += (Math.max(p.cpuSeconds - base, 0) / span) * 100;
        next.set(p.pid, { start: p.startSeconds, cpu: p.cpuSeconds });
        memory += readRss(p.pid);
      }
    }
    this.previous = next;
    this.previousAt = now;
    const host = hostTimes();
    const prevHost = this.previousHost;
    this.previousHost = host;
    const content: UsageReplyContent = {
      hostname: os.hostname(),
      pid: this.pid,
      kernel_cpu: round1(Math.max(kernelCpu, 0)),
      kernel_memory: memory,
      cpu_count: os.cpus().length || 1,
      host_virtual_memory: hostMemory(),
    };
    if (prevHost && host.total > prevHost.total) content.host_cpu_percent = round1(((host.busy - prevHost.busy) / (host.total - prevHost.total)) * 100);
    return content;
  }
}
