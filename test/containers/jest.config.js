/**
 * test/containers only (needs root and a Docker engine: `npm run test:containers` sets both up,
 * builds the kernel image and removes everything afterwards). Its own config, as
 * test/gateway-ssh: a --testMatch on the root config would apply to each of its projects.
 */
module.exports = {
  rootDir: "../..",
  displayName: "containers",
  preset: "ts-jest",
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.test.json", diagnostics: { warnOnly: false } }] },
  modulePathIgnorePatterns: ["<rootDir>/\\.venv"],
  testMatch: ["<rootDir>/test/containers/*.test.ts"],
  setupFilesAfterEnv: ["<rootDir>/test/helpers/setup-integration.ts"],
};
