/** Test helper: drive a real kernel cell by cell (see scripts/kernel-client.ts). */
export * from "../../scripts/kernel-client";
