/**
 * Renderers: data → {@link MimeBundle} with `text/html` (a plain `<table>` that JupyterLab's
 * own CSS styles in light and dark themes, no `<style>` blocks, which the sanitizer strips)
 * and `text/plain` (an aligned text table for terminals, nbconvert and diffs).
 */
import type { WorkerRecord } from "../jupyter/schemas";
import { redact } from "../errors";
import { escapeHtml } from "./bundle";
import type { MimeBundle } from "./sink";
import { formatBytes } from "../protocol/usage";

/** A column of {@link renderTable}. */
export interface Column {
  readonly label: string;
  /** Text columns are left-aligned (JupyterLab right-aligns table cells by default). */
  readonly align?: "left" | "right";
}

/** A table cell: its text, optional trusted inner HTML (already escaped) and a hover title. */
export interface TableCell {
  readonly text: string;
  readonly html?: string;
  readonly title?: string;
}

/** Input of {@link renderTable}. */
export interface TableSpec {
  readonly columns: readonly Column[];
  readonly rows: readonly (readonly (string | TableCell)[])[];
  /** A one-line summary above the table. */
  readonly caption?: string;
}

const LEFT = ' style="text-align:left"';

function cellOf(c: string | TableCell): TableCell {
  return typeof c === "string" ? { text: c } : c;
}

/** Pads cells to column widths; the header is underlined with dashes. Trailing spaces are trimmed. */
export function textTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.label.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => (c.align === "right" ? (cells[i] ?? "").padStart(widths[i]) : (cells[i] ?? "").padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.label)), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/**
 * Renders a table as both MIME types. Every text is HTML-escaped; `TableCell.html` is taken
 * as is, so callers must build it from escaped parts.
 */
export function renderTable(spec: TableSpec): MimeBundle {
  const rows = spec.rows.map((r) => r.map(cellOf));
  const align = (c: Column) => (c.align === "right" ? "" : LEFT);
  const td = (c: TableCell, col: Column) =>
    `<td${align(col)}${c.title ? ` title="${escapeHtml(c.title)}"` : ""}>${c.html ?? escapeHtml(c.text)}</td>`;
  const html = [
    "<table>",
    spec.caption ? `<caption${LEFT}>${escapeHtml(spec.caption)}</caption>` : "",
    `<thead><tr>${spec.columns.map((c) => `<th${align(c)}>${escapeHtml(c.label)}</th>`).join("")}</tr></thead>`,
    `<tbody>${rows.map((r) => `<tr>${spec.columns.map((c, i) => td(r[i] ?? { text: "" }, c)).join("")}</tr>`).join("")}</tbody>`,
    "</table>",
  ].join("");
  const text = textTable(
    spec.columns,
    rows.map((r) => r.map((c) => c.text)),
  );
  return { "text/plain": spec.caption ? `${spec.caption}\n${text}` : text, "text/html": html };
}

// White text on these backgrounds has a contrast ratio of at least 4.5:1, and the badge
// carries its own background, so it reads the same on JupyterLab's light and dark themes.
const STATUS_BACKGROUND: Record<string, string> = {
  starting: "#8a5a00",
  running: "#1a5fb4",
  idle: "#2e7d32",
  failed: "#c62828",
  stopped: "#5f6368",
};

function badge(status: string): string {
  const bg = STATUS_BACKGROUND[status] ?? "#5f6368";
  return `<span style="display:inline-block;padding:0 0.5em;border-radius:0.6em;color:#ffffff;background:${bg}">${escapeHtml(status)}</span>`;
}

/** `2024-05-01 10:00:00Z` from an ISO time; the input unchanged when it is not a date. */
export function formatTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toISOString().slice(0, 19).replace("T", " ") + "Z";
}

/** The first 8 characters of an id (a kernel UUID is unique enough at that length in one cluster). */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

const STATUS_ORDER = ["starting", "running", "idle", "failed", "stopped"];

/** `3 workers · 2 idle · 1 failed`; `no workers` for an empty list. */
export function workersSummary(records: readonly WorkerRecord[]): string {
  if (records.length === 0) return "no workers";
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const order = [...STATUS_ORDER, ...[...counts.keys()].filter((s) => !STATUS_ORDER.includes(s))];
  const parts = order.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s}`);
  return [`${records.length} worker${records.length === 1 ? "" : "s"}`, ...parts].join(" · ");
}

/** The figures the workers table shows of one worker's usage (src/protocol/usage.ts UsageReply). */
export interface UsageLike {
  readonly kernelCpu?: number;
  readonly kernelMemory?: number;
}

/** What stands in a usage cell when the kernel did not answer. */
export const NO_FIGURE = "—";


/**
 * The workers table: name, id (short; full id on hover), engine, size, status (a badge),
 * started, plus a reason column when any worker has one; captioned with {@link workersSummary}.
 * With `usage` (by worker id), also CPU % and memory columns; {@link NO_FIGURE} for a worker
 * without figures.
 */
export function renderWorkers(records: readonly WorkerRecord[], usage?: ReadonlyMap<string, UsageLike | undefined>, caption?: string): MimeBundle {
  const withReason = records.some((r) => r.reason);
  const columns: Column[] = ["name", "id", "engine", "size", "status", "started"].map((label) => ({ label, align: "left" }));
  if (usage) columns.push({ label: "cpu %", align: "right" }, { label: "memory", align: "right" });
  if (withReason) columns.push({ label: "reason", align: "left" });
  const rows = records.map((r) => {
    const row: TableCell[] = [
      { text: r.name },
      { text: shortId(r.id), html: `<code>${escapeHtml(shortId(r.id))}</code>`, title: r.id },
      { text: r.engine },
      { text: r.size },
      { text: r.status, html: badge(r.status), title: r.executionState ? `kernel: ${r.executionState}` : undefined },
      { text: formatTime(r.startedAt), title: r.startedAt },
    ];
    if (usage) {
      const u = usage.get(r.id);
      const cpu = u?.kernelCpu;
      const mem = u?.kernelMemory;
      row.push(
        { text: cpu === undefined ? NO_FIGURE : cpu.toFixed(1), title: cpu === undefined ? "the kernel did not answer a usage request" : "CPU % of the kernel's processes (100 = one core)" },
        { text: mem === undefined ? NO_FIGURE : formatBytes(mem), title: mem === undefined ? "the kernel did not answer a usage request" : "resident memory of the kernel's processes" },
      );
    }
    if (withReason) row.push({ text: r.reason ?? "" });
    return row;
  });
  return renderTable({ columns, rows, caption: caption ? `${workersSummary(records)} · ${caption}` : workersSummary(records) });
}

/** A two-column key/value table. */
export function renderKeyValues(entries: readonly [string, string | TableCell][], caption?: string): MimeBundle {
  return renderTable({
    columns: [
      { label: "key", align: "left" },
      { label: "value", align: "left" },
    ],
    rows: entries.map(([k, v]) => [k, v]),
    caption,
  });
}

/** One worker as a key/value table (every field of the record). */
export function renderWorker(record: WorkerRecord): MimeBundle {
  const entries: [string, string | TableCell][] = [
    ["name", record.name],
    ["id", { text: record.id, html: `<code>${escapeHtml(record.id)}</code>` }],
    ["engine", record.engine],
    ["size", record.size],
    ["status", { text: record.status, html: badge(record.status) }],
    ["started", { text: formatTime(record.startedAt), title: record.startedAt }],
    ["index", String(record.index)],
    ["master", record.masterId || "(this is a master)"],
    ["session", record.sessionId],
    ["path", record.path],
  ];
  if (record.executionState) entries.push(["kernel state", record.executionState]);
  if (record.reason) entries.push(["reason", record.reason]);
  return renderKeyValues(entries, `worker ${record.name} (${record.status})`);
}

/** What {@link renderNetwork} needs of the network info (structural, so any `getNetwork()` result fits). */
export interface NetworkInfoLike {
  readonly publicDns: string;
  readonly publicPortMapping: Readonly<Record<number, number>>;
  readonly projectIp: string;
  readonly sshPassword?: string;
  readonly publicSshPort?: number;
}

/** Shown instead of any secret. Secrets are never shown in part: even the last characters help a guess. */
export const MASK = "***";

function masked(value: string | undefined): string {
  return value ? MASK : "(not set)";
}

/** Network info: address, project IP, SSH (password masked) and the port mapping table. */
export function renderNetwork(info: NetworkInfoLike): MimeBundle {
  const general: [string, string][] = [
    ["public DNS", info.publicDns || "(not set)"],
    ["project IP", info.projectIp || "(not set)"],
  ];
  if (info.publicSshPort !== undefined) general.push(["public SSH port", String(info.publicSshPort)]);
  general.push(["SSH password", masked(info.sshPassword)]);
  const a = renderKeyValues(general, "network");
  const ports = Object.entries(info.publicPortMapping)
    .map(([k, v]) => [Number(k), v] as const)
    .sort((x, y) => x[0] - y[0]);
  if (ports.length === 0) {
    return { "text/plain": `${a["text/plain"]}\n\nno port mappings`, "text/html": `${a["text/html"]}<p>no port mappings</p>` };
  }
  const b = renderTable({
    columns: [
      { label: "port", align: "right" },
      { label: "public port", align: "right" },
    ],
    rows: ports.map(([k, v]) => [String(k), String(v)]),
    caption: "port mapping",
  });
  return { "text/plain": `${a["text/plain"]}\n\n${b["text/plain"]}`, "text/html": `${a["text/html"]}${b["text/html"]}` };
}

/** What {@link renderPools} needs of a warm pool (structural, as `workerPools()` returns it). */
export interface PoolInfoLike {
  engine: string;
  size: string;
  folder: string;
  /** How many kernels the pool keeps warm. */
  target: number;
  ready: number;
  starting: number;
  /** Why the last pooled kernel failed to start, if one did. */
  lastError?: string;
}

/** The warm pools as a table (engine, size, folder, target, ready, starting, last error). */
export function renderPools(pools: readonly PoolInfoLike[]): MimeBundle {
  if (!pools.length) return { "text/plain": "no warm pool (start one with %sense_pool N or setWorkerPool({ n }))", "text/html": "<p>no warm pool (start one with <code>%sense_pool N</code> or <code>setWorkerPool({ n })</code>)</p>" };
  return renderTable({
    columns: [
      { label: "engine" },
      { label: "size" },
      { label: "folder" },
      { label: "target", align: "right" },
      { label: "ready", align: "right" },
      { label: "starting", align: "right" },
      { label: "last error" },
    ],
    rows: pools.map((p) => [p.engine, p.size, p.folder || "/", String(p.target), String(p.ready), String(p.starting), p.lastError ?? ""]),
    caption: "warm worker pool",
  });
}

/** What {@link renderAuth} needs of credentials (structural). */
export interface AuthLike {
  readonly username?: string;
  readonly password?: string;
  readonly token?: string;
  /** Where the credentials came from, e.g. `SENSE_API_TOKEN` or `jpserver-123.json`. */
  readonly source?: string;
  readonly url?: string;
}

const SECRET_KEY = /pass|token|secret|key|cookie|credential/i;

/**
 * Credentials with every secret fully masked (`***`, or `(empty)` when it is empty) and the
 * source shown; a URL is shown with `token=` query values redacted. Other string fields are
 * shown as they are unless their name looks secret.
 */
export function renderAuth(auth: AuthLike): MimeBundle {
  const entries: [string, string][] = [["username", auth.username === undefined ? "(not set)" : auth.username || "(empty)"]];
  const seen = new Set(["username", "source", "url"]);
  const known: (keyof AuthLike)[] = ["password", "token"];
  for (const k of known) {
    seen.add(k);
    if (k in auth) entries.push([k, auth[k] ? MASK : "(empty)"]);
  }
  for (const [k, v] of Object.entries(auth)) {
    if (seen.has(k) || (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean")) continue;
    entries.push([k, SECRET_KEY.test(k) ? (v === "" ? "(empty)" : MASK) : String(v)]);
  }
  const secrets = [auth.password, auth.token];
  if (auth.url) entries.push(["url", redact(auth.url, secrets)]);
  entries.push(["source", auth.source ?? "(unknown)"]);
  return renderKeyValues(entries, "credentials (secrets masked)");
}

/** What {@link renderInstall} needs of an install result (structural). */
export interface InstallResultLike {
  /** The package specs asked for. */
  readonly packages: readonly string[];
  /** What ended up installed, when known. */
  readonly installed?: readonly { readonly name: string; readonly version?: string }[];
  /** Installed version by package name (the shape `install()` returns); used when `installed` is absent. */
  readonly versions?: Readonly<Record<string, string>>;
  /** New top-level `node_modules` entries. */
  readonly added?: readonly string[];
  /** The folder installed into (the project home). */
  readonly cwd?: string;
  readonly durationMs?: number;
  /** The npm argv that was run (never a shell string). */
  readonly argv?: readonly string[];
}

/** `Installed lodash, zod into /home/p in 2.3 s` plus a name/version table when versions are known. */
export function renderInstall(result: InstallResultLike): MimeBundle {
  const where = result.cwd ? ` into ${result.cwd}` : "";
  const took = result.durationMs !== undefined ? ` in ${(result.durationMs / 1000).toFixed(1)} s` : "";
  const baseHead = `Installed ${result.packages.join(", ") || "(nothing)"}${where}${took}`;
  const installed = result.installed ?? Object.entries(result.versions ?? {}).map(([name, version]) => ({ name, version }));
  const rows = installed.map((p) => [p.name, p.version ?? ""]);
  const added = result.added?.length ? `; ${result.added.length} new top-level package${result.added.length === 1 ? "" : "s"}` : "";
  const head = `${baseHead}${added}`;
  const cmd = result.argv?.length ? `\ncommand: ${result.argv.join(" ")}` : "";
  if (rows.length === 0) {
    return {
      "text/plain": head + cmd,
      "text/html": `<p>${escapeHtml(head)}</p>${cmd ? `<p><code>${escapeHtml(result.argv?.join(" "))}</code></p>` : ""}`,
    };
  }
  const t = renderTable({
    columns: [
      { label: "package", align: "left" },
      { label: "version", align: "left" },
    ],
    rows,
    caption: head,
  });
  return {
    "text/plain": t["text/plain"] + cmd,
    "text/html": `${t["text/html"]}${cmd ? `<p><code>${escapeHtml(result.argv?.join(" "))}</code></p>` : ""}`,
  };
}

/** A progress line: `<progress>` in HTML, `label [#####.....] 3/10 30%` in text. */
export function renderProgress(label: string, done: number, total: number): MimeBundle {
  const t = Math.max(0, total);
  const d = Math.min(Math.max(0, done), t);
  const frac = t > 0 ? d / t : 0;
  const pct = `${Math.round(frac * 100)}%`;
  const width = 20;
  const filled = Math.round(frac * width);
  const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
  return {
    "text/plain": `${label} ${bar} ${d}/${t} ${pct}`,
    "text/html": `<div><span>${escapeHtml(label)}</span> <progress value="${d}" max="${t || 1}"></progress> <span>${d}/${t} ${pct}</span></div>`,
  };
}

/** What {@link renderMagicList} needs of a registry (structural, so display does not depend on magics). */
export interface MagicListSource {
  list(): readonly { readonly name: string; readonly kinds: readonly string[]; readonly summary: string }[];
}

/** `%lsmagic`: one row per magic with its forms (`%x`, `%%x`) and summary; text lists line and cell magics first, IPython style. */
export function renderMagicList(registry: MagicListSource): MimeBundle {
  const magics = registry.list();
  const forms = (m: { name: string; kinds: readonly string[] }) =>
    [m.kinds.includes("line") ? `%${m.name}` : "", m.kinds.includes("cell") ? `%%${m.name}` : ""].filter(Boolean).join(" ");
  const t = renderTable({
    columns: [
      { label: "magic", align: "left" },
      { label: "summary", align: "left" },
    ],
    rows: magics.map((m) => [{ text: forms(m), html: `<code>${escapeHtml(forms(m))}</code>` }, m.summary]),
    caption: `${magics.length} magic${magics.length === 1 ? "" : "s"}; %name? shows help`,
  });
  const line = magics.filter((m) => m.kinds.includes("line")).map((m) => `%${m.name}`);
  const cell = magics.filter((m) => m.kinds.includes("cell")).map((m) => `%%${m.name}`);
  const head = `Available line magics:\n${line.join("  ") || "(none)"}\n\nAvailable cell magics:\n${cell.join("  ") || "(none)"}\n\n`;
  return { "text/plain": head + t["text/plain"], "text/html": t["text/html"] };
}

/** What {@link renderMapProgress} shows. */
export interface MapProgressLike {
  done: number;
  total: number;
  /** Items done per worker, in target order; `lost` says why a worker left the map. */
  perWorker: readonly { worker: string; done: number; lost?: string }[];
  elapsedMs: number;
  state: "running" | "done" | "failed" | "interrupted";
  /** Chunks run again because their worker was lost. */
  reruns?: number;
}

/** `map` progress: a bar with done/total, items per worker and elapsed time (text: one line). */
export function renderMapProgress(p: MapProgressLike): MimeBundle {
  const label = p.state === "running" ? "map" : `map ${p.state}`;
  const bar = renderProgress(label, p.done, p.total);
  const secs = `${(p.elapsedMs / 1000).toFixed(1)} s`;
  const workers = p.perWorker.map((w) => `${w.worker} ${w.done}${w.lost !== undefined ? " (lost)" : ""}`).join(" · ");
  const lost = p.perWorker.filter((w) => w.lost !== undefined);
  const reruns = p.reruns ? ` · ${p.reruns} chunk${p.reruns === 1 ? "" : "s"} re-run` : "";
  const why = lost.length ? `\n${lost.map((w) => `${w.worker} lost: ${w.lost ?? ""}`).join("\n")}` : "";
  if (lost.length || reruns) {
    return {
      "text/plain": `${bar["text/plain"]} · ${workers}${reruns} · ${secs}${why}`,
      "text/html": `${bar["text/html"] as string}<div><small>${escapeHtml(workers + reruns)} · ${escapeHtml(secs)}</small></div>${lost.map((w) => `<div><small>${escapeHtml(`${w.worker} lost: ${w.lost ?? ""}`)}</small></div>`).join("")}`,
    };
  }
  return {
    "text/plain": `${bar["text/plain"]} · ${workers} · ${secs}`,
    "text/html": `${bar["text/html"] as string}<div><small>${escapeHtml(workers)} · ${escapeHtml(secs)}</small></div>`,
  };
}

/** One row of {@link renderExecuteResults} (the fields of an `ExecuteResult` it shows). */
export interface ExecuteResultLike {
  worker: string;
  status: string;
  value: unknown;
  data: Record<string, unknown>;
  error?: { ename: string; evalue: string };
  durationMs: number;
}

function valueText(r: ExecuteResultLike): string {
  if (r.status !== "ok") return r.error ? `${r.error.ename}: ${r.error.evalue}` : "";
  if (r.value === undefined) return "";
  const text = typeof r.value === "string" ? r.value : JSON.stringify(r.value);
  const one = text.replace(/\s*\n\s*/g, " ");
  return one.length > 80 ? one.slice(0, 79) + "…" : one;
}

/** `execute` results: one row per worker (worker, status, value, time). */
export function renderExecuteResults(results: readonly ExecuteResultLike[]): MimeBundle {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  return renderTable({
    columns: [{ label: "worker" }, { label: "status" }, { label: "value" }, { label: "time", align: "right" }],
    rows: results.map((r) => [r.worker, r.status, valueText(r), `${r.durationMs.toFixed(1)} ms`]),
    caption: `${results.length} worker${results.length === 1 ? "" : "s"} · ${[...counts].map(([s, n]) => `${n} ${s}`).join(" · ")}`,
  });
}
