/** Test helper: drive a real kernel cell by cell (see harness/kernel-client.ts). */
export * from "../../harness/kernel-client";
