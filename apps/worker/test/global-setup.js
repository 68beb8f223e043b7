// The transform threads of the tests run the build (dist/threads/transform-thread.js): a worker
// thread cannot load TypeScript. turbo builds this package before it tests it; a bare `jest`
// needs `npm run build` first, and again after a change to what the threads run.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const THREAD_SCRIPT = path.join(ROOT, 'dist', 'threads', 'transform-thread.js');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(file) : fs.statSync(file).mtimeMs);
  }
  return newest;
}

module.exports = () => {
  if (!fs.existsSync(THREAD_SCRIPT)) {
    throw new Error(
      `${path.relative(ROOT, THREAD_SCRIPT)} is missing: the tests run the transform threads from the build; run \`npm run build\` first`,
    );
  }
  if (fs.statSync(THREAD_SCRIPT).mtimeMs < newestSource(path.join(ROOT, 'src'))) {
    console.warn('\nwarning: src/ changed after the last build; the transform threads run dist/ (npm run build)');
  }
};
