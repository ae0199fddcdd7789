/**
 * Test harness: a real Jupyter Server from the project's own .venv (see harness/local-server.ts,
 * shared with the demo and the benchmarks). `stop()` always ends it and every process it started.
 */
export * from "../../harness/local-server";
