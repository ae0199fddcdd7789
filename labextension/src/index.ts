/**
 * The Sense side panel: a left-sidebar widget listing every Sense cluster on this Jupyter Server
 * (masters and their workers, from the sessions' tags; failed workers, whose sessions are gone,
 * from their masters), each kernel's CPU and memory, and actions (stop a worker, stop a cluster,
 * restart a failed worker, open a console on a worker's kernel, open the master's notebook).
 * Refreshes every 3 s while visible (slower with many workers; every 0.5 s while an action is
 * under way), not at all while hidden or while the browser tab is in the background; a refresh is
 * one `GET api/sessions` plus one control message per running kernel and one per Sense notebook or
 * console kernel (a possible master).
 */
import { ILabShell, type JupyterFrontEnd, type JupyterFrontEndPlugin } from "@jupyterlab/application";
import { ICommandPalette } from "@jupyterlab/apputils";
import { URLExt } from "@jupyterlab/coreutils";
import { ServerConnection, type Session } from "@jupyterlab/services";
import { LabIcon } from "@jupyterlab/ui-components";
import { Widget } from "@lumino/widgets";
import { addMasterWorkers, clustersOf, formatBytes, formatUptime, possibleMasters, stopRoute, UsageClient, type ClusterRow, type Usage, type WorkerRow } from "./model";
import { CLUSTER_REQUEST, clusterReply, type ClusterRequest, type ClusterWorker } from "../../src/protocol/control";

const PANEL_ID = "sense-clusters";
const SHOW = "sense:show-clusters";

const senseIcon = new LabIcon({
  name: "sense-tslab:clusters",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<circle cx="12" cy="5" r="3"/><circle cx="5" cy="18" r="3"/><circle cx="19" cy="18" r="3"/>' +
    '<path d="M11 8h2v4l5 3.5-1 1.7-5-3.5-5 3.5-1-1.7 5-3.5z"/></g></svg>',
});

/** Base refresh period while visible; grows with the number of kernels so 64 workers stay calm. */
const BASE_MS = 3_000;
/** The refresh period while an action (a restart: seconds) is under way, so its steps show. */
const ACTION_MS = 500;
/** How long the panel waits for a master to restart or stop workers. */
const ACTION_TIMEOUT_MS = 600_000;

class SensePanel extends Widget {
  private timer: number | undefined;
  private busy = false;
  private clusters: ClusterRow[] = [];
  private usage = new Map<string, Usage>();
  /** Each master's failed workers as it last said (kept while it does not answer: a busy cell). */
  private failed = new Map<string, ClusterWorker[]>();
  /** Actions under way (the panel refreshes faster meanwhile). */
  private pending = 0;
  /** Counts finished actions: a master's list asked before one finished is stale. */
  private actions = 0;
  private error = "";
  private readonly usageClient: UsageClient;
  private readonly list: HTMLElement;
  private readonly status: HTMLElement;

  constructor(private readonly app: JupyterFrontEnd) {
    super();
    this.id = PANEL_ID;
    this.addClass("sense-Panel");
    this.title.icon = senseIcon;
    this.title.caption = "Sense clusters";
    this.usageClient = new UsageClient(app.serviceManager.kernels);
    const header = document.createElement("div");
    header.className = "sense-Panel-header";
    header.innerHTML = '<span class="sense-Panel-title">Sense clusters</span>';
    const refresh = document.createElement("button");
    refresh.className = "sense-Button";
    refresh.textContent = "Refresh";
    refresh.dataset.action = "refresh";
    refresh.onclick = () => void this.refresh();
    header.appendChild(refresh);
    this.status = document.createElement("div");
    this.status.className = "sense-Panel-status";
    this.list = document.createElement("div");
    this.list.className = "sense-Panel-list";
    this.node.append(header, this.status, this.list);
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  dispose(): void {
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.stopTimer();
    this.usageClient.close();
    super.dispose();
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  protected onAfterHide(): void {
    // Hidden: no polling, and no open kernel sockets.
    this.stopTimer();
    this.usageClient.close();
  }

  private onVisibility = (): void => {
    if (document.visibilityState === "visible" && this.isVisible) void this.refresh();
    else this.stopTimer();
  };

  private stopTimer(): void {
    if (this.timer !== undefined) window.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.stopTimer();
    if (!this.isVisible || document.visibilityState !== "visible") return;
    const kernels = this.clusters.reduce((n, c) => n + c.workers.length + (c.master ? 1 : 0), 0);
    this.timer = window.setTimeout(() => void this.refresh(), this.pending > 0 ? ACTION_MS : BASE_MS + kernels * 100);
  }

  /** One refresh: the sessions, then the usage of each running kernel; never two at once. */
  async refresh(): Promise<void> {
    if (this.busy || this.isDisposed) return;
    this.busy = true;
    this.stopTimer();
    try {
      const settings = this.app.serviceManager.serverSettings;
      const res = await ServerConnection.makeRequest(URLExt.join(settings.baseUrl, "api/sessions"), {}, settings);
      if (!res.ok) throw new Error(`the server answered ${res.status} to GET api/sessions`);
      const sessions = (await res.json()) as Session.IModel[];
      const masters = possibleMasters(sessions);
      const clusters = clustersOf(sessions);
      // What masters said last time, at once: a failed worker's row does not blink at each refresh.
      for (const id of [...this.failed.keys()]) if (!masters.some((m) => m.id === id)) this.failed.delete(id);
      for (const [id, workers] of this.failed) addMasterWorkers(clusters, sessions, id, workers);
      this.clusters = clusters;
      this.error = "";
      this.render();
      const kernels = this.clusters.flatMap((c) => [
        ...(c.master ? [{ id: c.masterId, name: c.master.kernelName }] : []),
        // A starting kernel answers nothing yet: asking it would hold the refresh for the timeout.
        ...c.workers.filter((w) => w.status !== "starting" && w.status !== "failed" && w.status !== "stopped" && w.status !== "dead").map((w) => ({ id: w.kernelId, name: w.engine })),
      ]);
      const asked = new Map<string, ClusterWorker[]>();
      const epoch = this.actions;
      const [usage] = await Promise.all([
        this.usageClient.sample([...kernels, ...masters.filter((m) => !kernels.some((k) => k.id === m.id))]),
        ...masters.map(async (m) => {
          const reply = clusterReply(await this.usageClient.control(m, CLUSTER_REQUEST, { action: "list" }));
          if (reply.status === "ok") asked.set(m.id, reply.workers);
        }),
      ]);
      this.usage = usage;
      if (epoch === this.actions) for (const [id, workers] of asked) this.failed.set(id, workers);
      const fresh = clustersOf(sessions);
      for (const [id, workers] of this.failed) addMasterWorkers(fresh, sessions, id, workers);
      this.clusters = fresh;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.busy = false;
    }
    this.render();
    this.schedule();
  }

  private async act(what: string, run: () => Promise<unknown>): Promise<void> {
    this.status.textContent = `${what}…`;
    try {
      await run();
      this.status.textContent = "";
    } catch (e) {
      this.status.textContent = `${what} failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    await this.refresh();
  }

  private stopSessions(ids: readonly string[]): Promise<unknown> {
    return Promise.all(ids.map((id) => this.app.serviceManager.sessions.shutdown(id)));
  }

  /**
   * Asks a master to restart or stop its workers (its own restartWorkers / stopWorkers: only the
   * process that launched a worker knows its engine, env and startup code).
   * @throws Error with the master's message when it refused, failed or did not answer.
   */
  private async askMaster(c: ClusterRow, request: ClusterRequest): Promise<void> {
    if (!c.master) throw new Error("its master has no kernel on this server");
    this.pending++;
    this.schedule();
    try {
      const content = await this.usageClient.control({ id: c.masterId, name: c.master.kernelName }, CLUSTER_REQUEST, request, ACTION_TIMEOUT_MS);
      if (content === undefined) throw new Error("the master kernel did not answer");
      const reply = clusterReply(content);
      if (reply.status === "error") throw new Error(reply.message);
    } finally {
      this.pending--;
      this.actions++;
    }
  }

  /** Stops a worker: asks its master to (a failed one: it records it stopped), or deletes its session ({@link stopRoute}). */
  private stopWorker(c: ClusterRow, w: WorkerRow): Promise<unknown> {
    return stopRoute(c, w) === "master" ? this.askMaster(c, { action: "stop", workers: [w.name] }) : this.stopSessions([w.sessionId]);
  }

  private render(): void {
    if (this.error) this.status.textContent = this.error;
    this.list.replaceChildren();
    if (this.clusters.length === 0) {
      const empty = document.createElement("p");
      empty.className = "sense-Panel-empty";
      empty.textContent = "No Sense clusters on this server. Launch workers from a notebook (%%sense_worker or launchWorkers).";
      this.list.appendChild(empty);
      return;
    }
    const now = Date.now();
    for (const c of this.clusters) {
      const box = document.createElement("section");
      box.className = "sense-Cluster";
      box.dataset.master = c.masterId;
      const head = document.createElement("div");
      head.className = "sense-Cluster-head";
      const title = document.createElement("div");
      title.className = "sense-Cluster-title";
      const masterUsage = this.usage.get(c.masterId);
      title.textContent = c.master ? c.master.path : c.masterId.startsWith("process-") ? `Node process ${c.masterId.slice(8)}` : `master ${c.masterId.slice(0, 8)} (headless)`;
      title.title = c.masterId;
      const meta = document.createElement("div");
      meta.className = "sense-Cluster-meta";
      meta.textContent = [c.master ? `${c.master.kernelName} · ${c.master.executionState}` : "", `${c.workers.length} worker${c.workers.length === 1 ? "" : "s"}`, masterUsage ? `${masterUsage.cpu.toFixed(1)}% · ${formatBytes(masterUsage.memory)}` : ""].filter(Boolean).join(" · ");
      const actions = document.createElement("div");
      actions.className = "sense-Cluster-actions";
      if (c.master) {
        const path = c.master.path;
        actions.appendChild(button("Open notebook", "open-notebook", () => void this.app.commands.execute("docmanager:open", { path })));
      }
      const all = [...c.workers.filter((w) => stopRoute(c, w) === "session").map((w) => w.sessionId), ...c.poolSessionIds];
      const gone = c.workers.filter((w) => stopRoute(c, w) === "master").map((w) => w.name);
      if (all.length || gone.length) {
        actions.appendChild(
          button("Stop cluster", "stop-cluster", () =>
            void this.act(`stopping ${all.length + gone.length} worker(s)`, () => Promise.all([this.stopSessions(all), gone.length ? this.askMaster(c, { action: "stop", workers: gone }) : undefined])),
          ),
        );
      }
      head.append(title, meta, actions);
      box.appendChild(head);
      // Two lines per worker, so the panel reads at the sidebar's default width.
      const list = document.createElement("div");
      list.className = "sense-Workers";
      for (const w of c.workers) {
        const u = this.usage.get(w.kernelId);
        const row = document.createElement("div");
        row.className = "sense-Worker";
        row.dataset.worker = w.name;
        row.dataset.session = w.sessionId;
        row.dataset.kernel = w.kernelId;
        row.dataset.status = w.status;
        const top = document.createElement("div");
        top.className = "sense-Worker-line";
        const name = span(w.name, "sense-Worker-name");
        const badge = span(w.status, `sense-Badge sense-Badge-${w.status}`);
        badge.title = `kernel: ${w.executionState}`;
        const meta = span(`${w.engine} · ${w.size}`, "sense-Worker-meta");
        meta.title = meta.textContent ?? "";
        const acts = span("", "sense-Worker-actions");
        const kernelId = w.kernelId;
        const alive = w.status !== "failed" && w.status !== "dead" && w.status !== "stopped" && !w.gone;
        if (alive) acts.appendChild(button("Console", "console", () => void this.app.commands.execute("console:create", { kernelPreference: { id: kernelId }, activate: true })));
        if (w.status === "failed" && w.restartable) {
          acts.appendChild(
            button("Restart", "restart", () => {
              // The row says what was asked at once; the next refresh shows what the master reports.
              w.status = "starting";
              w.executionState = "starting";
              this.render();
              void this.act(`restarting ${w.name}`, () => this.askMaster(c, { action: "restart", workers: [w.name] }));
            }),
          );
        }
        // A worker its master is restarting (no session yet) has nothing to act on until it has one.
        if (!w.gone || w.status === "failed") acts.appendChild(button("Stop", "stop", () => void this.act(`stopping ${w.name}`, () => this.stopWorker(c, w))));
        top.append(name, badge, meta, acts);
        const bottom = document.createElement("div");
        bottom.className = "sense-Worker-line sense-Worker-figures";
        bottom.title = u ? "CPU % (100 = one core) and resident memory of the worker's kernel and its child processes" : "the kernel did not answer a usage request";
        bottom.append(
          span(u ? u.cpu.toFixed(1) : "—", "sense-num", "cpu"),
          span("% cpu", "sense-Label"),
          span(u ? formatBytes(u.memory) : "—", "sense-num sense-Gap", "memory"),
          // A failed or stopped worker's kernel is gone: it has no uptime.
          ...(alive ? [span(`up ${formatUptime(now - w.startedAtMs)}`, "sense-Label sense-Gap")] : []),
        );
        row.append(top, bottom);
        if (w.reason && w.status === "failed") {
          const reason = document.createElement("div");
          reason.className = "sense-Worker-line sense-Worker-reason";
          reason.dataset.field = "reason";
          reason.textContent = w.reason;
          reason.title = w.reason;
          row.appendChild(reason);
        }
        list.appendChild(row);
      }
      box.appendChild(list);
      this.list.appendChild(box);
    }
  }
}

function span(text: string, className?: string, field?: string): HTMLSpanElement {
  const cell = document.createElement("span");
  cell.textContent = text;
  if (className) cell.className = className;
  if (field) cell.dataset.field = field;
  return cell;
}

function button(label: string, action: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement("button");
  b.className = "sense-Button";
  b.textContent = label;
  b.dataset.action = action;
  b.onclick = onClick;
  return b;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "sense-tslab-panel:plugin",
  description: "Every Sense cluster on this server, in a side panel.",
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, shell: ILabShell, palette: ICommandPalette | null) => {
    const panel = new SensePanel(app);
    shell.add(panel, "left", { rank: 900 });
    app.commands.addCommand(SHOW, {
      label: "Sense: Show Clusters",
      caption: "Show every Sense cluster on this server",
      execute: () => shell.activateById(panel.id),
    });
    palette?.addItem({ command: SHOW, category: "Sense" });
  },
};

export default plugin;
