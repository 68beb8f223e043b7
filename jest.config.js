/**
 * The end-to-end tests at the root: the built services as separate processes.
 * Each package has its own jest.config.js for its unit and component tests.
 * @type {import('jest').Config}
 */
module.exports = {
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/e2e/tsconfig.json' }] },
  testEnvironment: 'node',
  roots: ['<rootDir>/e2e'],
  testMatch: ['**/*.test.ts'],
  testTimeout: 120_000,
};
