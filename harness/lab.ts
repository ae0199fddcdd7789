/**
 * `npm run lab`: opens JupyterLab from the project's own environment, with the Sense kernels
 * registered, on the example notebooks (copied to .sense/lab-project, the project home, so
 * installs made there stay out of the repository). Stops its kernels when you press Ctrl-C.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, VENV } from "./local-server";

const project = path.join(REPO, ".sense", "lab-project");
fs.mkdirSync(project, { recursive: true });
for (const f of fs.readdirSync(path.join(REPO, "notebooks"))) {
  const dst = path.join(project, f);
  if (f.endsWith(".ipynb") && !fs.existsSync(dst)) fs.copyFileSync(path.join(REPO, "notebooks", f), dst);
}
const args = [`--ServerApp.root_dir=${project}`, ...(process.getuid?.() === 0 ? ["--allow-root"] : []), ...process.argv.slice(2)];
console.log(`JupyterLab on ${project}; pick the "TypeScript (Sense)" kernel. Ctrl-C stops it.`);
const child = spawn(path.join(VENV, "bin", "jupyter-lab"), args, {
  stdio: "inherit",
  env: { ...process.env, PATH: `${path.join(VENV, "bin")}:${process.env.PATH ?? ""}` },
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
child.on("exit", (code) => process.exit(code ?? 0));
