/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  // Bounds a test that would hang; real servers and processes on a busy machine need the room.
  testTimeout: 30_000,
  testMatch: ['<rootDir>/test/**/*.test.ts'],
};
