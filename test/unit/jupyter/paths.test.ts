import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { jupyterDataDir, jupyterPath, jupyterRuntimeDir, pythonPrefixes } from "../../../src/jupyter/paths";
import { findKernelSpec, findKernelSpecs } from "../../../src/backends/direct/kernelspecs";
import { substituteEnvTemplate } from "../../../src/backends/direct/spawn";

const home = "/home/u";
const p = (env: NodeJS.ProcessEnv) => ({ env, home, procRoot: "/nonexistent-proc" });

test("data and runtime folders follow jupyter_core", () => {
  expect(jupyterDataDir(p({}))).toBe("/home/u/.local/share/jupyter");
  expect(jupyterDataDir(p({ XDG_DATA_HOME: "/x" }))).toBe("/x/jupyter");
  expect(jupyterDataDir(p({ JUPYTER_DATA_DIR: "/d", XDG_DATA_HOME: "/x" }))).toBe("/d");
  expect(jupyterRuntimeDir(p({ JUPYTER_DATA_DIR: "/d" }))).toBe("/d/runtime");
  expect(jupyterRuntimeDir(p({ JUPYTER_RUNTIME_DIR: "/r" }))).toBe("/r");
});

test("the kernels search path: JUPYTER_PATH first, the environment before the user inside a venv, system last", () => {
  expect(jupyterPath("kernels", p({ JUPYTER_PATH: `/a${path.delimiter}/b/`, VIRTUAL_ENV: "/venv" }))).toEqual([
    "/a/kernels",
    "/b/kernels",
    "/venv/share/jupyter/kernels",
    "/home/u/.local/share/jupyter/kernels",
    "/usr/local/share/jupyter/kernels",
    "/usr/share/jupyter/kernels",
  ]);
  // No environment known: user first; JUPYTER_PREFER_ENV_PATH=0 keeps the user first even in a venv.
  expect(jupyterPath("kernels", p({}))[0]).toBe("/home/u/.local/share/jupyter/kernels");
  expect(jupyterPath("kernels", p({ VIRTUAL_ENV: "/venv", JUPYTER_PREFER_ENV_PATH: "0" })).slice(0, 2)).toEqual(["/home/u/.local/share/jupyter/kernels", "/venv/share/jupyter/kernels"]);
});

test("the environment's prefix is read from the Python that started the kernel (JPY_PARENT_PID)", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sense-proc-"));
  fs.mkdirSync(path.join(root, "4242"));
  fs.writeFileSync(path.join(root, "4242", "cmdline"), "/opt/env/bin/python\0-m\0nbclient\0");
  fs.symlinkSync("/", path.join(root, "4242", "cwd"));
  expect(pythonPrefixes({ env: { JPY_PARENT_PID: "4242" }, home, procRoot: root })).toEqual(["/opt/env"]);
  expect(pythonPrefixes({ env: { JPY_PARENT_PID: "../etc" }, home, procRoot: root })).toEqual([]);
  expect(pythonPrefixes({ env: { SENSE_JUPYTER_PREFIX: "/p", VIRTUAL_ENV: "/p", JPY_PARENT_PID: "4242" }, home, procRoot: root })).toEqual(["/p", "/opt/env"]);
  fs.rmSync(root, { recursive: true, force: true });
});

test("kernelspecs: the first folder holding a name wins; invalid specs are passed over; names are case-insensitive", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sense-specs-"));
  const put = (dir: string, name: string, body: unknown) => {
    fs.mkdirSync(path.join(root, dir, "kernels", name), { recursive: true });
    fs.writeFileSync(path.join(root, dir, "kernels", name, "kernel.json"), typeof body === "string" ? body : JSON.stringify(body));
  };
  put("a", "Dup", { argv: ["first"], display_name: "A" });
  put("b", "dup", { argv: ["second"], display_name: "B" });
  put("b", "broken", "{not json");
  put("b", "noargv", { display_name: "no argv" });
  const env = p({ JUPYTER_PATH: [path.join(root, "a"), path.join(root, "b")].join(path.delimiter), JUPYTER_DATA_DIR: path.join(root, "none") });
  const all = findKernelSpecs(env);
  expect(all.get("dup")?.spec.argv).toEqual(["first"]);
  expect(all.has("broken") || all.has("noargv")).toBe(false);
  expect(findKernelSpec("DUP", env).resourceDir).toBe(path.join(root, "a", "kernels", "Dup"));
  expect(() => findKernelSpec("__proto__", env)).toThrow(/No kernelspec named "__proto__"/);
  fs.rmSync(root, { recursive: true, force: true });
});

test("env templates substitute like Python's Template.safe_substitute", () => {
  const vars = { HOME: "/h", A_1: "x" };
  expect(substituteEnvTemplate("${HOME}/bin:$A_1:$$:$MISSING:${MISSING}", vars)).toBe("/h/bin:x:$:$MISSING:${MISSING}");
  expect(substituteEnvTemplate("no vars", vars)).toBe("no vars");
});
