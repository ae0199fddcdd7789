/**
 * test/gateway-ssh only (needs root, iproute2, openssh-server: not part of `npm test`). The root
 * jest.config.js has projects, and a command-line --testMatch would apply to each of them (the file
 * ran 4 times, in parallel, against one namespace); this config has none.
 * Run: `npm run test:gateway-ssh` (sets up and removes the namespace host, scripts/ssh-host.sh).
 */
module.exports = {
  rootDir: "../..",
  displayName: "gateway-ssh",
  preset: "ts-jest",
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.test.json", diagnostics: { warnOnly: false } }] },
  modulePathIgnorePatterns: ["<rootDir>/\\.venv"],
  testMatch: ["<rootDir>/test/gateway-ssh/*.test.ts"],
  setupFilesAfterEnv: ["<rootDir>/test/helpers/setup-integration.ts"],
};
