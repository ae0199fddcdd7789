import { renderWorkers, renderWorker, renderNetwork, renderAuth, renderInstall, renderProgress, renderMagicList, textTable, workersSummary } from "../../../src/display/tables";
import { escapeHtml, makeDisplayable, isDisplayable, INSPECT_CUSTOM, JUPYTER_DISPLAY } from "../../../src/display/bundle";
import type { WorkerRecord } from "../../../src/jupyter/schemas";
import { inspect } from "node:util";

function worker(over: Partial<WorkerRecord>): WorkerRecord {
  return {
    id: "0123456789abcdef-0000",
    name: "w1",
    engine: "sense-ts",
    size: "small",
    status: "idle",
    masterId: "m-1",
    startedAt: "2024-05-01T10:00:00.000Z",
    sessionId: "s-1",
    path: "nb/.sense/m-w1",
    index: 1,
    ...over,
  };
}

const records = [
  worker({}),
  worker({ id: "ffffffff11112222", name: "w2-long-name", status: "failed", reason: "startup code threw", size: "large" }),
  worker({ id: "aaaa", name: "w3", status: "idle", engine: "python3" }),
];

describe("renderWorkers", () => {
  test("both MIME types, a summary, plain table markup without <style>", () => {
    const b = renderWorkers(records);
    expect(Object.keys(b).sort()).toEqual(["text/html", "text/plain"]);
    expect(workersSummary(records)).toBe("3 workers · 2 idle · 1 failed");
    expect(b["text/plain"].split("\n")[0]).toBe("3 workers · 2 idle · 1 failed");
    const html = b["text/html"] as string;
    expect(html).toMatch(/^<table><caption[^>]*>3 workers · 2 idle · 1 failed<\/caption><thead><tr>/);
    expect(html).toContain("<tbody>");
    expect(html).not.toMatch(/<style|class=/);
    expect(html).toContain('<th style="text-align:left">name</th>');
    expect(html).toContain('title="0123456789abcdef-0000"');
    expect(html).toContain("<code>01234567</code>");
    expect(html).toContain("startup code threw");
  });

  test("text/plain columns are aligned and the header underlined", () => {
    const lines = renderWorkers(records)["text/plain"].split("\n").slice(1);
    expect(lines[0]).toBe("name          id        engine    size   status  started               reason");
    expect(lines[1]).toBe("------------  --------  --------  -----  ------  --------------------  ------------------");
    expect(lines[2]).toBe("w1            01234567  sense-ts  small  idle    2024-05-01 10:00:00Z");
    expect(lines[3]).toBe("w2-long-name  ffffffff  sense-ts  large  failed  2024-05-01 10:00:00Z  startup code threw");
    // Every column starts at the same offset in every row.
    const starts = (l: string) => [...l.matchAll(/(?<=^| {2})\S/g)].map((m) => m.index);
    expect(starts(lines[2])).toEqual(starts(lines[0]).slice(0, 6));
  });

  test("HTML in a worker name is escaped everywhere", () => {
    const evil = worker({ name: `<script>alert("x")</script>`, engine: "<b>e</b>", reason: "a & b" });
    for (const b of [renderWorkers([evil]), renderWorker(evil)]) {
      const html = b["text/html"] as string;
      expect(html).not.toContain("<script>");
      expect(html).not.toContain("<b>e</b>");
      expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
      expect(html).toContain("a &amp; b");
      expect(b["text/plain"]).toContain(`<script>alert("x")</script>`);
    }
  });

  test("empty list", () => {
    expect(renderWorkers([])["text/plain"]).toMatch(/^no workers\n/);
  });

  test("status badges carry their own colours (readable on light and dark themes)", () => {
    const html = renderWorkers(records)["text/html"] as string;
    expect(html).toMatch(/<span style="[^"]*color:#ffffff;background:#c62828">failed<\/span>/);
  });
});

describe("renderNetwork and renderAuth mask secrets", () => {
  test("network: ssh password masked, ports sorted and right-aligned", () => {
    const b = renderNetwork({ publicDns: "host.example", projectIp: "10.0.0.5", sshPassword: "hunter2secret", publicPortMapping: { 8080: 30080, 22: 30022 } });
    for (const v of Object.values(b)) {
      expect(v).not.toContain("hunter2secret");
      expect(v).toContain("***");
      expect(v).toContain("host.example");
    }
    expect(b["text/plain"]).toContain("port mapping\nport  public port\n----  -----------\n  22        30022\n8080        30080");
  });

  test("auth: password and token fully masked, never a suffix; source shown; url token redacted", () => {
    const token = "abcdef0123456789";
    const b = renderAuth({ username: "alice", password: "s3cretpass", source: "SENSE_USERNAME / SENSE_PASSWORD", url: `http://h/?token=${token}` });
    const t = renderAuth({ token, source: "token" });
    for (const bundle of [b, t]) {
      for (const v of Object.values(bundle)) {
        expect(v).not.toContain("s3cret");
        expect(v).not.toContain(token.slice(-4));
        expect(v).toContain("***");
      }
    }
    expect(b["text/plain"]).toContain("alice");
    expect(b["text/plain"]).toContain("SENSE_USERNAME / SENSE_PASSWORD");
    expect(renderAuth({ username: "u", password: "" })["text/plain"]).toMatch(/password\s+\(empty\)/);
  });
});

describe("other renderers", () => {
  test("install: versions table, folder and time", () => {
    const b = renderInstall({ packages: ["lodash", "zod@4"], versions: { lodash: "4.17.21", zod: "4.1.0" }, added: ["lodash", "zod"], cwd: "/p", durationMs: 2345 });
    expect(b["text/plain"]).toBe("Installed lodash, zod@4 into /p in 2.3 s; 2 new top-level packages\npackage  version\n-------  -------\nlodash   4.17.21\nzod      4.1.0");
    expect(b["text/html"]).toContain("<td style=\"text-align:left\">4.17.21</td>");
  });

  test("progress: <progress> element and a text bar", () => {
    const b = renderProgress("workers <ready>", 3, 10);
    expect(b["text/html"]).toContain('<progress value="3" max="10"></progress>');
    expect(b["text/html"]).toContain("workers &lt;ready&gt;");
    expect(b["text/plain"]).toBe("workers <ready> [######..............] 3/10 30%");
    expect(renderProgress("x", 5, 0)["text/plain"]).toBe("x [....................] 0/0 0%");
  });

  test("magic list", () => {
    const b = renderMagicList({ list: () => [{ name: "a", kinds: ["line", "cell"], summary: "does <a>" }] });
    expect(b["text/plain"]).toContain("%a %%a");
    expect(b["text/html"]).toContain("does &lt;a&gt;");
  });

  test("textTable pads right-aligned columns on the left", () => {
    expect(textTable([{ label: "n", align: "right" }, { label: "name" }], [["100", "x"], ["2", "yy"]])).toBe("  n  name\n---  ----\n100  x\n  2  yy");
  });
});

describe("displayable hooks", () => {
  test("escapeHtml", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });

  test("one bundle feeds inspect (tslab), Jupyter.display (Deno) and _toMime (nel), non-enumerably", () => {
    const bundle = { "text/plain": "TEXT", "text/html": "<b>x</b>" };
    const obj = makeDisplayable({ a: 1 }, () => bundle);
    expect(isDisplayable(obj)).toBe(true);
    expect(inspect(obj)).toBe("TEXT");
    expect((obj as unknown as Record<symbol, () => unknown>)[JUPYTER_DISPLAY]()).toBe(bundle);
    expect((obj as unknown as { _toMime(): unknown })._toMime()).toBe(bundle);
    expect(typeof (obj as unknown as Record<symbol, unknown>)[INSPECT_CUSTOM]).toBe("function");
    expect(JSON.stringify(obj)).toBe('{"a":1}');
    expect(Object.keys(obj)).toEqual(["a"]);
  });
});
