// The AWS SDK's warning that its releases from 2027 need Node 22 (printed once per worker), off by its documented switch.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  // Bounds a test that would hang; real servers and processes on a busy machine need the room.
  testTimeout: 30_000,
  testMatch: ['<rootDir>/test/**/*.test.ts'],
};
