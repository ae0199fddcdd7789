/** Unit tests run in parallel; integration tests (real Jupyter Servers, real kernels) run one file at a time. */
const common = {
  preset: "ts-jest",
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.test.json", diagnostics: { warnOnly: false } }] },
  // The Python environments (.venv, .venv-eg) hold JupyterLab's package.json files: not modules of ours.
  modulePathIgnorePatterns: ["<rootDir>/\\.venv", "<rootDir>/labextension", "<rootDir>/dist/labextension"],
};
module.exports = {
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/test/unit/**/*.test.ts"] },
    {
      ...common,
      displayName: "integration",
      testMatch: ["<rootDir>/test/integration/**/*.test.ts"],
      setupFilesAfterEnv: ["<rootDir>/test/helpers/setup-integration.ts"],
    },
    {
      // Faults, bad input, soak, load, secrets (docs/reliability.md). SENSE_RELIABILITY=full selects the full counts.
      ...common,
      displayName: "reliability",
      testMatch: ["<rootDir>/test/reliability/**/*.test.ts"],
      setupFilesAfterEnv: ["<rootDir>/test/helpers/setup-integration.ts"],
    },
    {
      // Work that survives lost workers (#23, docs/reliability.md): real workers SIGKILLed, stopped
      // and out of memory mid-map. SENSE_CHAOS=full (npm run test:chaos) runs longer and more often.
      ...common,
      displayName: "chaos",
      testMatch: ["<rootDir>/test/chaos/**/*.test.ts"],
      setupFilesAfterEnv: ["<rootDir>/test/helpers/setup-integration.ts"],
    },
    {
      // Through a real Jupyter Enterprise Gateway (.venv-eg) and under a JupyterHub single-user
      // server (test/gateway/README.md, docs/scale-out.md).
      ...common,
      displayName: "gateway",
      testMatch: ["<rootDir>/test/gateway/**/*.test.ts"],
      setupFilesAfterEnv: ["<rootDir>/test/helpers/setup-integration.ts"],
    },
  ],
};
