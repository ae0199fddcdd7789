/**
 * The Sense panel in a real JupyterLab (from .venv) in headless Chromium (issue #26): installed by
 * `sense-tslab install --prefix`, it lists the workers a notebook launched with status and usage,
 * stops one (its session goes, on the server, in the panel and in the notebook's live table),
 * opens a console on a worker's kernel, and renders in the dark theme; and shows a worker killed
 * with SIGKILL as failed with its reason (from its master: its session is gone), after a page
 * reload too, and restarts it from the panel (starting, running, idle); all behind a base URL
 * (`/user/sense-test/`, as JupyterHub serves a user's server). Screenshots go to
 * artifacts/browser/panel-*.png.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { REPO, startJupyterServer, JupyterServer, processesUnder } from "../helpers/jupyter";
import { RestClient } from "../../src/jupyter/rest";
import type { SessionModel } from "../../src/jupyter/schemas";
import { decodeWorkerTag } from "../../src/workers/session-tags";
import { kernelPid } from "../reliability/support";

const CHROMIUM = process.env.SENSE_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) console.warn(`panel check skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set SENSE_CHROMIUM)`);
const maybe = haveChromium ? describe : describe.skip;
const SHOTS = path.join(REPO, "artifacts", "browser");

/** Resolves once `check` returns a value (asked again after each server round trip), or fails after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function palette(page: Page, label: string): Promise<void> {
  // The shortcut belongs to the application, not to an editor that has the focus.
  await page.locator("#jp-top-panel").click({ position: { x: 700, y: 10 } });
  await page.keyboard.press("Control+Shift+C");
  const input = page.locator(".lm-CommandPalette-input");
  await input.waitFor({ timeout: 30_000 });
  await input.fill(label);
  await page.locator(".lm-CommandPalette-item", { hasText: label }).first().click();
}

maybe("the Sense panel in JupyterLab", () => {
  let server: JupyterServer | undefined;
  let browser: Browser | undefined;
  let prefix: string;
  let rest: RestClient;

  beforeAll(async () => {
    prefix = fs.mkdtempSync(path.join(os.tmpdir(), "sense-panel-prefix-"));
    const install = spawnSync(process.execPath, [path.join(REPO, "dist", "src", "cli.js"), "install", "--prefix", prefix], { encoding: "utf8" });
    expect(install.status).toBe(0);
    expect(install.stdout).toMatch(/installed the JupyterLab panel in /);
    // Behind a base URL, as under JupyterHub: the panel's requests and sockets must keep it.
    server = await startJupyterServer({ lab: true, baseUrl: "/user/sense-test/", env: { JUPYTER_PATH: path.join(prefix, "share", "jupyter") } });
    expect(server.url).toMatch(/\/user\/sense-test\/$/);
    rest = new RestClient({ baseUrl: server.url, token: server.token });
    const notebook = (source: string[]) => ({
      cells: [{ cell_type: "code", execution_count: null, id: "launch", metadata: {}, outputs: [], source }],
      metadata: { kernelspec: { display_name: "JavaScript (Sense)", language: "javascript", name: "sense-js" } },
      nbformat: 4,
      nbformat_minor: 5,
    });
    fs.writeFileSync(path.join(server.rootDir, "cluster.ipynb"), JSON.stringify(notebook(["%%sense_worker -n 3\n", "1"])));
    // Startup code that takes 3 s: a restarted worker is `running` long enough to be seen so.
    fs.writeFileSync(path.join(server.rootDir, "restart.ipynb"), JSON.stringify(notebook(["%%sense_worker -n 2\n", "await new Promise((r) => setTimeout(r, 3000));"])));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      const marker = server.baseDir;
      await server.stop();
      expect(processesUnder(marker)).toEqual([]);
    }
    fs.rmSync(prefix, { recursive: true, force: true });
  });

  it("lists the notebook's workers, stops w2, opens a console on w1, renders dark, stops the cluster", async () => {
    if (!server || !browser) throw new Error("setup failed");
    const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    try {
      await walkThrough(page, server, rest);
    } catch (e) {
      // What the page showed when it failed, beside the other screenshots.
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, "panel-failure.png") }).catch(() => undefined);
      throw e;
    } finally {
      await page.close();
    }
  }, 300_000);

  it("shows a SIGKILLed worker failed with its reason (after a reload too), restarts it (starting, running, idle), and stops a failed one", async () => {
    if (!server || !browser) throw new Error("setup failed");
    const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    try {
      await restartWalk(page, server, rest);
    } catch (e) {
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, "panel-restart-failure.png") }).catch(() => undefined);
      throw e;
    } finally {
      await page.close();
    }
  }, 300_000);
});

/** Opens `file` in JupyterLab and runs its first cell as a person would; resolves with the cell's live workers table. */
async function runNotebook(page: Page, server: JupyterServer, file: string) {
  // A workspace of its own: JupyterLab would otherwise restore what an earlier page left open.
  await page.goto(`${server.url}lab/workspaces/${file.replace(/[^A-Za-z0-9]/g, "-")}/tree/${file}?token=${server.token}`);
  await page.locator(".jp-Notebook").first().waitFor({ timeout: 120_000 });
  await page.locator(".jp-StatusBar-TextItem", { hasText: /\|\s*Idle/ }).first().waitFor({ timeout: 120_000 });
  // A run asked while the kernel was still connecting can be lost, so it is asked again until
  // the prompt shows it ran or runs.
  const prompt = page.locator(".jp-Cell .jp-InputPrompt").first();
  for (let attempt = 0; ; attempt++) {
    await page.locator(".jp-Cell .jp-InputArea-editor").first().click();
    await page.keyboard.press("Shift+Enter");
    const ran = await prompt.filter({ hasText: /\[(\*|\d+)\]/ }).waitFor({ timeout: 15_000 }).then(() => true, () => false);
    if (ran) break;
    if (attempt === 3) throw new Error("the notebook's cell never ran");
  }
  return page.locator(".jp-OutputArea-output table").filter({ hasText: /status/ }).first();
}

/** The worker sessions of the master whose notebook is `file`, by worker name. */
async function workerSessions(rest: RestClient, file: string): Promise<Map<string, SessionModel>> {
  const sessions = await rest.listSessions();
  const master = sessions.find((s) => s.path.endsWith(file))?.kernel?.id;
  const out = new Map<string, SessionModel>();
  for (const s of sessions) {
    const tag = decodeWorkerTag(s.name);
    if (tag && tag.masterId === master) out.set(`w${tag.index}`, s);
  }
  return out;
}

async function restartWalk(page: Page, server: JupyterServer, rest: RestClient): Promise<void> {
  const liveTable = await runNotebook(page, server, "restart.ipynb");
  await liveTable.locator("tbody tr", { hasText: "idle" }).nth(1).waitFor({ timeout: 120_000 });
  // Opened from its sidebar tab, as a person would (the palette is the first test's).
  const panel = page.locator("#sense-clusters");
  const showPanel = async () => {
    if (!(await panel.isVisible())) await page.locator(".lm-TabBar-tab[data-id='sense-clusters']").click();
  };
  await showPanel();
  const cluster = panel.locator(".sense-Cluster", { hasText: "restart.ipynb" });
  const w2 = cluster.locator("[data-worker='w2']");
  await cluster.locator("[data-worker][data-status='idle']").nth(1).waitFor({ timeout: 30_000 });
  const killed = await w2.getAttribute("data-kernel");
  if (!killed) throw new Error("w2's row names no kernel");

  // SIGKILL w2's kernel process: the server restarts it, its master marks it failed and deletes
  // its session; the panel learns it, with the reason, from the master only.
  process.kill(kernelPid(killed), "SIGKILL");
  await until("w2's session to be deleted", async () => ((await workerSessions(rest, "restart.ipynb")).has("w2") ? undefined : true));
  const failedRow = cluster.locator("[data-worker='w2'][data-status='failed']");
  await failedRow.locator("[data-field='reason']").waitFor({ timeout: 30_000 });
  expect(await failedRow.locator("[data-field='reason']").textContent()).toMatch(/its kernel process exited and was restarted by the server/);
  expect(await failedRow.getAttribute("data-kernel")).toBe(killed);
  expect(await failedRow.locator("button[data-action='console']").count()).toBe(0);
  // The notebook's live table says the same (the reload below drops this unsaved output).
  await liveTable.locator("tbody tr", { hasText: "w2" }).filter({ hasText: "failed" }).waitFor({ timeout: 30_000 });
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, "panel-failed-w2.png") });

  // A reload keeps it: the master still holds the record.
  await page.reload();
  await page.locator(".jp-Notebook").first().waitFor({ timeout: 120_000 });
  await page.locator(".jp-StatusBar-TextItem", { hasText: /\|\s*Idle/ }).first().waitFor({ timeout: 120_000 });
  // The workspace may bring the panel back open by itself.
  await showPanel();
  await failedRow.locator("[data-field='reason']").waitFor({ timeout: 30_000 });
  expect(await cluster.locator("[data-worker='w1'][data-status='idle']").count()).toBe(1);

  // Every status w2's row shows from here on, as the panel renders it.
  // (Run in the page, as text: this test is compiled without the DOM's types.)
  await page.evaluate(`(() => {
    const seen = (window.senseW2 = []);
    const note = () => {
      for (const row of document.querySelectorAll("#sense-clusters [data-worker='w2']")) {
        if (seen[seen.length - 1] !== row.dataset.status) seen.push(row.dataset.status);
      }
    };
    note();
    new MutationObserver(note).observe(document.querySelector("#sense-clusters"), { childList: true, subtree: true, attributes: true });
  })()`);
  await failedRow.locator("button[data-action='restart']").click();
  const running = cluster.locator("[data-worker='w2'][data-status='running']");
  await running.waitFor({ timeout: 60_000 });
  await page.screenshot({ path: path.join(SHOTS, "panel-restarting-w2.png") });
  const idle = cluster.locator("[data-worker='w2'][data-status='idle']");
  await idle.waitFor({ timeout: 60_000 });
  const fresh = await idle.getAttribute("data-kernel");
  expect(fresh).not.toBe(killed);
  // On the server: w2 has a session again, on the fresh kernel, tagged idle.
  const again = await until("w2's new session", async () => (await workerSessions(rest, "restart.ipynb")).get("w2"));
  expect(again.kernel?.id).toBe(fresh);
  expect(decodeWorkerTag(again.name)?.status).toBe("idle");
  const seen = (await page.evaluate("window.senseW2")) as string[];
  expect(seen[0]).toBe("failed");
  // After failed, only forward: (starting) running idle.
  const order = ["starting", "running", "idle"];
  const after = seen.slice(1);
  expect(after).toEqual(expect.arrayContaining(["starting", "running"]));
  expect(after[after.length - 1]).toBe("idle");
  expect(after.every((st, i) => order.includes(st) && (i === 0 || order.indexOf(st) > order.indexOf(after[i - 1])))).toBe(true);
  expect(await cluster.locator("[data-worker='w2'] [data-field='reason']").count()).toBe(0);
  await page.screenshot({ path: path.join(SHOTS, "panel-restarted-w2.png") });

  // Stop on a failed worker: its master records it stopped, and its row goes.
  const w1Kernel = await cluster.locator("[data-worker='w1']").getAttribute("data-kernel");
  process.kill(kernelPid(w1Kernel ?? ""), "SIGKILL");
  const w1Failed = cluster.locator("[data-worker='w1'][data-status='failed']");
  await w1Failed.locator("[data-field='reason']").waitFor({ timeout: 30_000 });
  await w1Failed.locator("button[data-action='stop']").click();
  await cluster.locator("[data-worker='w1']").waitFor({ state: "detached", timeout: 30_000 });
  expect(await cluster.locator("[data-worker]").count()).toBe(1);
  expect([...(await workerSessions(rest, "restart.ipynb")).keys()]).toEqual(["w2"]);
  console.log(`panel restart: w2 states seen ${seen.join(" -> ")}`);
}

async function walkThrough(page: Page, server: JupyterServer, rest: RestClient): Promise<void> {
    // The notebook's live table shows three idle workers.
    const liveTable = await runNotebook(page, server, "cluster.ipynb");
    await liveTable.locator("tbody tr", { hasText: "idle" }).nth(2).waitFor({ timeout: 120_000 });

    // The panel, from the command palette.
    await palette(page, "Sense: Show Clusters");
    const panel = page.locator("#sense-clusters");
    await panel.waitFor({ state: "visible", timeout: 30_000 });
    const rows = panel.locator("[data-worker]");
    await rows.nth(2).waitFor({ timeout: 30_000 });
    expect(await rows.count()).toBe(3);
    expect(await panel.locator(".sense-Cluster-title").first().textContent()).toBe("cluster.ipynb");
    // Usage within a few seconds: every row has numbers, not —.
    for (const name of ["w1", "w2", "w3"]) {
      const row = panel.locator(`[data-worker='${name}']`);
      await row.locator("[data-field='cpu']", { hasText: /^\d+\.\d$/ }).waitFor({ timeout: 15_000 });
      expect(await row.locator("[data-field='memory']").textContent()).toMatch(/MiB|GiB/);
      expect(await row.locator(".sense-Badge").textContent()).toBe("idle");
    }
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, "panel-light.png") });

    // Stop w2 from the panel: its session goes on the server, the panel and the live table say so.
    const w2Session = await panel.locator("[data-worker='w2']").getAttribute("data-session");
    expect(w2Session).toBeTruthy();
    await panel.locator("[data-worker='w2'] button[data-action='stop']").click();
    await until("w2's session to be deleted", async () => ((await rest.listSessions()).some((s) => s.id === w2Session) ? undefined : true));
    await panel.locator("[data-worker='w2']").waitFor({ state: "detached", timeout: 30_000 });
    expect(await rows.count()).toBe(2);
    await liveTable.locator("tbody tr", { hasText: "w2" }).filter({ hasText: /stopped|failed/ }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, "panel-stopped-w2.png") });

    // A console on w1's kernel.
    const w1Kernel = await panel.locator("[data-worker='w1']").getAttribute("data-kernel");
    await panel.locator("[data-worker='w1'] button[data-action='console']").click();
    await page.locator(".jp-CodeConsole").first().waitFor({ timeout: 60_000 });
    const consoleSession = await until<SessionModel>("a console session", async () => (await rest.listSessions()).find((s) => s.type === "console"));
    expect(consoleSession.kernel?.id).toBe(w1Kernel);
    await page.screenshot({ path: path.join(SHOTS, "panel-console-w1.png") });

    // Dark theme: the panel takes JupyterLab's theme variables.
    await palette(page, "Use Theme: JupyterLab Dark");
    await page.locator("body[data-jp-theme-light='false']").waitFor({ state: "attached", timeout: 30_000 });
    await palette(page, "Sense: Show Clusters");
    await panel.waitFor({ state: "visible", timeout: 30_000 });
    // Typed by hand: this test is compiled without the DOM's types.
    type Styled = { ownerDocument: { defaultView: { getComputedStyle(e: unknown): { backgroundColor: string } } } };
    const background = await panel.evaluate((el: unknown) => (el as Styled).ownerDocument.defaultView.getComputedStyle(el).backgroundColor);
    const [r, g, b] = (background.match(/\d+/g) ?? []).map(Number);
    expect((r + g + b) / 3).toBeLessThan(80);
    await page.screenshot({ path: path.join(SHOTS, "panel-dark.png") });

    // Stop the whole cluster: every worker session of the master goes, the master stays.
    await panel.locator("button[data-action='stop-cluster']").click();
    await until("no worker sessions left", async () => ((await rest.listSessions()).some((s) => s.type === "sense-worker") ? undefined : true));
    await panel.locator("[data-worker]").first().waitFor({ state: "detached", timeout: 30_000 });
    expect((await rest.listSessions()).some((s) => s.path.endsWith("cluster.ipynb"))).toBe(true);
}
