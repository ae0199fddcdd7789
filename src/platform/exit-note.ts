/**
 * Why a worker's kernel ended, when something outside the kernel knows it. A kernel killed for
 * memory cannot say so itself; the container entry (`kernel-extension/eg-launcher/container-entry.ts`)
 * that outlives it writes a note into the shared project home,
 * `<project home>/.sense/exit-<kernel id>.json`, before its container ends, and the master reads
 * (and removes) it when it marks that worker `failed`. The note holds no secret: a kernel id, a
 * reason, an exit status.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";

/** The note's schema. */
export const ExitNoteSchema = z.object({
  kernelId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  reason: z.string().min(1).max(500),
  exitCode: z.number().int(),
});
/** A note, as written. */
export type ExitNote = z.infer<typeof ExitNoteSchema>;

/** Where the note of `kernelId` lives under `projectHome`. Pure. */
export function exitNotePath(projectHome: string, kernelId: string): string {
  return path.join(projectHome, ".sense", `exit-${kernelId}.json`);
}

/**
 * Writes the note (0644: the master may run as another user of the same group), creating
 * `.sense/` when needed. Returns the path written.
 * @throws ZodError for a note that does not match {@link ExitNoteSchema}; Node's fs errors.
 */
export function writeExitNote(projectHome: string, note: ExitNote): string {
  const checked = ExitNoteSchema.parse(note);
  const file = exitNotePath(projectHome, checked.kernelId);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(checked) + "\n", { mode: 0o644 });
  fs.renameSync(tmp, file); // a reader never sees half a note
  return file;
}

/**
 * Reads and removes the note of `kernelId`; `undefined` when there is none or it is not a valid
 * note (a reason is an extra, never a reason to fail). Never throws.
 */
export function takeExitNote(projectHome: string, kernelId: string): ExitNote | undefined {
  const file = exitNotePath(projectHome, kernelId);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  fs.rmSync(file, { force: true });
  try {
    const parsed = ExitNoteSchema.safeParse(JSON.parse(text));
    return parsed.success && parsed.data.kernelId === kernelId ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
