// Checks the package as it would be published: packs it (as built: run the build first, as turbo
// does), then lints the tarball with publint and are-the-types-wrong, and checks what it holds:
// only the built files and the documents, declarations free of Node's types, source maps that
// carry their sources. Exits non-zero on any problem.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const require = createRequire(import.meta.url);
const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
const problems = [];

if (!fs.existsSync(path.join(packageDir, 'dist', 'index.js'))) {
  console.error('dist/ is missing: build the package first (npm run build)');
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'contracts-check-'));
try {
  // --ignore-scripts: the build has run; prepack would only build it again.
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: packageDir, encoding: 'utf8' }),
  );
  const tarball = path.join(work, packed.filename);
  console.log(`${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${packed.files.length} files`);
  for (const file of packed.files) console.log(`  ${file.path} (${file.size} bytes)`);

  // publint, on the tarball itself.
  const { messages } = await publint({ pack: { tarball: fs.readFileSync(tarball).buffer }, level: 'suggestion', strict: true });
  for (const message of messages) {
    const line = `publint ${message.type}: ${formatMessage(message, pkg) ?? message.code}`;
    if (message.type === 'suggestion') console.log(line);
    else problems.push(line);
  }
  console.log(`publint: ${messages.length === 0 ? 'no issues' : `${messages.length} message(s)`}`);

  // are-the-types-wrong, strict profile: node10 (typesVersions for the subpath), node16 from
  // CommonJS and from ESM, and bundler resolution of every entry point.
  const attw = path.join(path.dirname(require.resolve('@arethetypeswrong/cli/package.json')), 'dist', 'index.js');
  try {
    const out = execFileSync(process.execPath, [attw, tarball, '--format', 'ascii', '--no-color', '--no-emoji'], {
      encoding: 'utf8',
    });
    console.log(out.trim());
  } catch (err) {
    problems.push(`are-the-types-wrong:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }

  // What the tarball holds.
  const unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
  const root = path.join(unpacked, 'package');
  const files = packed.files.map((file) => file.path);
  const allowed = /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/.+)$/;
  for (const file of files.filter((name) => !allowed.test(name))) problems.push(`unexpected file in the tarball: ${file}`);
  for (const needed of ['LICENSE', 'README.md', 'CHANGELOG.md', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts']) {
    if (!files.includes(needed)) problems.push(`missing from the tarball: ${needed}`);
  }

  // Declarations another project type-checks without @types/node (and in a browser).
  const nodeOnly = [/\bBuffer\b/, /\bNodeJS\./, /reference\s+types\s*=\s*["']node["']/, /from ["']node:/];
  for (const file of files.filter((name) => /\.d\.[cm]?ts$/.test(name))) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    for (const pattern of nodeOnly) if (pattern.test(text)) problems.push(`${file} mentions Node's ${pattern.source}`);
  }

  // Source maps: each names its sources and carries their text (src/ is not shipped).
  for (const file of files.filter((name) => name.endsWith('.map'))) {
    const map = JSON.parse(fs.readFileSync(path.join(root, file), 'utf8'));
    const carried = (map.sourcesContent ?? []).filter((text) => typeof text === 'string').length;
    if (carried !== map.sources.length) problems.push(`${file} carries ${carried} of its ${map.sources.length} sources`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

if (problems.length > 0) {
  console.error(`\n${problems.length} problem(s) with the package:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('package checks: ok');
