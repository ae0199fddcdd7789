/**
 * A real browser check: JupyterLab in headless Chromium runs the getting-started notebook and
 * the worker table renders as an HTML table in the page. Saves a screenshot to
 * artifacts/browser/getting-started.png (named in the README).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, Browser } from "playwright-core";
import { REPO, startJupyterServer, JupyterServer, processesUnder } from "../helpers/jupyter";

const CHROMIUM = process.env.SENSE_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  // Only where Chromium cannot be installed (scripts/test.sh installs Debian's chromium when it can).
  console.warn(`browser check skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set SENSE_CHROMIUM)`);
}
const maybe = haveChromium ? describe : describe.skip;

maybe("JupyterLab in headless Chromium", () => {
  let server: JupyterServer | undefined;
  let browser: Browser | undefined;
  const shot = path.join(REPO, "artifacts", "browser", "getting-started.png");

  beforeAll(async () => {
    server = await startJupyterServer({ lab: true });
    fs.copyFileSync(path.join(REPO, "notebooks", "getting-started.ipynb"), path.join(server.rootDir, "getting-started.ipynb"));
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
  });

  it("runs getting-started.ipynb and shows the worker table as HTML", async () => {
    if (!server || !browser) throw new Error("setup failed");
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${server.url}lab/tree/getting-started.ipynb?token=${server.token}`);
    // The notebook is open and its kernel idle.
    await page.locator(".jp-Notebook").first().waitFor({ timeout: 120_000 });
    await page.locator(".jp-StatusBar-TextItem", { hasText: /\|\s*Idle/ }).first().waitFor({ timeout: 120_000 });
    await page.locator(".jp-Notebook").first().click();
    // Run → Run All Cells, as a person would.
    await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Run$/ }).click();
    await page.locator(".lm-Menu-itemLabel", { hasText: /^Run All Cells$/ }).click();
    // A worker table: an HTML table in an output area, with a status column and worker rows.
    const table = page.locator(".jp-OutputArea-output table").filter({ hasText: /status/i }).filter({ hasText: /idle|running|stopped/ }).first();
    try {
      await table.waitFor({ timeout: 240_000 });
    } catch (e) {
      // What the page showed instead, for whoever reads the failure.
      fs.mkdirSync(path.dirname(shot), { recursive: true });
      await page.screenshot({ path: shot.replace(/\.png$/, "-failed.png"), fullPage: true }).catch(() => undefined);
      throw e;
    }
    expect(await table.locator("th").count()).toBeGreaterThanOrEqual(4);
    expect(await table.locator("tbody tr").count()).toBeGreaterThanOrEqual(1);
    // Wait for the last cell (stopWorkers) to report, so the run is complete before the screenshot.
    await page.locator(".jp-OutputArea-output", { hasText: /stopped \d+ workers/ }).first().waitFor({ timeout: 240_000 });
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await table.scrollIntoViewIfNeeded();
    await page.screenshot({ path: shot, fullPage: false });
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
    // A fresh environment's first JupyterLab page load is much slower than later ones (seen: >180 s on a clean clone).
  }, 480_000);
});
