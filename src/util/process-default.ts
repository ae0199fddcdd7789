/**
 * A process's default instances: one Cluster, Discovery, Installer, Lifecycle and Transpiler per
 * process, behind the functional API (`launchWorkers`, `getContext`, `install`, `onShutdown`,
 * `checkAndTranspile`, ...). Each is made on first use, so a process pays only for what it uses;
 * tests and tools that want their own state construct an instance instead.
 */

/**
 * A getter of one lazily made instance: `make` runs on the first call, and every call returns
 * that same object. A throw from `make` propagates and nothing is kept, so the next call tries again.
 */
export function processDefault<T>(make: () => T): () => T {
  let instance: T | undefined;
  return () => (instance ??= make());
}
