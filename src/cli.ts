#!/usr/bin/env node
/**
 * The `sense-tslab` command: `install` / `uninstall` register or remove the Sense kernelspecs.
 * Subcommands live in one table so more (`demo`, `lab`) can be added without touching the parser.
 * A usage error prints one short line plus usage (no stack) and exits 2; other failures exit 1.
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { isSenseError, isUsageError, UsageError } from "./errors";
import { kernelsDir, removeKernelSpecs, SpecDestination, writeKernelSpecs } from "./kernelspecs";
import { denoOnPath, writeDenoKernelSpec } from "./platform/deno";
import { installLabextension, labextensionsDirBeside, uninstallLabextension } from "./labextension";

/** Where a command writes its text; injectable for tests. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

/** One subcommand: its usage line, summary and body. `run` resolves to the exit status. */
export interface CliCommand {
  usage: string;
  summary: string;
  run(args: string[], io: CliIO): Promise<number> | number;
}

const DEST_USAGE = "[--user | --sys-prefix [--python PYTHON] | --prefix DIR]";

/**
 * Parses the destination flags shared by `install` and `uninstall`.
 * @throws UsageError (`usage` / `bad_option`) for unknown flags, stray arguments or conflicting destinations.
 */
export function parseDestination(args: string[], usage: string): SpecDestination {
  let values: { user?: boolean; "sys-prefix"?: boolean; prefix?: string; python?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: { user: { type: "boolean" }, "sys-prefix": { type: "boolean" }, prefix: { type: "string" }, python: { type: "string" } },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    // parseArgs' messages are clear but carry a hint about `--` that does not apply here.
    const msg = (e as Error).message.replace(/\s*To specify a positional argument.*$/s, "");
    throw new UsageError(msg, { usage, code: "bad_option" });
  }
  const chosen = [values.user && "--user", values["sys-prefix"] && "--sys-prefix", values.prefix !== undefined && "--prefix"].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`choose one of ${chosen.join(", ")}`, { usage, code: "bad_option" });
  if (values.python !== undefined && !values["sys-prefix"]) throw new UsageError("--python only goes with --sys-prefix", { usage, code: "bad_option" });
  if (values.prefix !== undefined) {
    if (!values.prefix) throw new UsageError("--prefix needs a folder", { usage, code: "bad_option" });
    return { kind: "prefix", prefix: values.prefix };
  }
  if (values["sys-prefix"]) {
    if (values.python === "") throw new UsageError("--python needs an interpreter", { usage, code: "bad_option" });
    return { kind: "sys-prefix", python: values.python };
  }
  return { kind: "user" };
}

/** The subcommands, by name. Others (e.g. `demo`, `lab`) are added by registering here. */
export const commands: Record<string, CliCommand> = {
  install: {
    usage: `sense-tslab install ${DEST_USAGE}`,
    summary: "register the Sense kernels and the JupyterLab panel with Jupyter (default: --user)",
    run(args, io) {
      const kernels = kernelsDir(parseDestination(args, commands.install.usage));
      for (const c of writeKernelSpecs(kernels)) io.out(`installed ${c.name} in ${c.dir}\n`);
      const panel = installLabextension(labextensionsDirBeside(kernels));
      io.out(panel.changed ? `installed the JupyterLab panel in ${panel.dir}\n` : "the JupyterLab panel is not built in this package (npm run build): not installed\n");
      return 0;
    },
  },
  "install-deno": {
    usage: `sense-tslab install-deno [--deno PATH] ${DEST_USAGE}`,
    summary: "register Deno's Jupyter kernel (kernelspec `deno`) at the same places (default: the deno on PATH, --user)",
    run(args, io) {
      const usage = commands["install-deno"].usage;
      const i = args.indexOf("--deno");
      const deno = i >= 0 ? args[i + 1] : denoOnPath();
      if (i >= 0 && (deno === undefined || deno.startsWith("--"))) throw new UsageError("--deno needs the path of the deno binary", { usage, code: "bad_option" });
      if (deno === undefined) throw new UsageError("no deno on PATH: give --deno PATH", { usage, code: "bad_option" });
      const rest = i >= 0 ? [...args.slice(0, i), ...args.slice(i + 2)] : args;
      io.out(`installed deno in ${writeDenoKernelSpec(kernelsDir(parseDestination(rest, usage)), path.resolve(deno))}\n`);
      return 0;
    },
  },
  uninstall: {
    usage: `sense-tslab uninstall ${DEST_USAGE}`,
    summary: "remove the Sense kernels from the same places",
    run(args, io) {
      const kernels = kernelsDir(parseDestination(args, commands.uninstall.usage));
      for (const c of removeKernelSpecs(kernels)) {
        io.out(c.changed ? `removed ${c.name} from ${c.dir}\n` : `${c.name}: not installed in ${c.dir}\n`);
      }
      const panel = uninstallLabextension(labextensionsDirBeside(kernels));
      io.out(panel.changed ? `removed the JupyterLab panel from ${panel.dir}\n` : `the JupyterLab panel: not installed in ${panel.dir}\n`);
      return 0;
    },
  },
};

/** The usage text of the whole command. */
export function usageText(): string {
  const lines = Object.entries(commands).map(([, c]) => `  ${c.usage}\n      ${c.summary}`);
  return `usage: sense-tslab <command> [options]\n\ncommands:\n${lines.join("\n")}\n`;
}

const stdio: CliIO = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/**
 * Runs the CLI on `argv` (without `node` and the script) and resolves to the exit status:
 * 0 ok, 1 failure, 2 usage error. Never throws: every error is printed short to `io.err`.
 */
export async function runCli(argv: string[], io: CliIO = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.err : io.out)(usageText());
    return name === undefined ? 2 : 0;
  }
  const command = Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : undefined;
  if (!command) {
    io.err(`UsageError: unknown command '${name}'\n\n${usageText()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(`usage: ${command.usage}\n  ${command.summary}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (isUsageError(e)) {
      io.err(`UsageError: ${e.message}\n${e.usage ? `usage: ${e.usage}\n` : ""}`);
      return 2;
    }
    io.err(`sense-tslab ${name}: ${isSenseError(e) ? `${e.name} (${e.code}): ` : ""}${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
