import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { compare, decode, encode, makeBitmap } from './images';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startStack } = require('../scripts/stack') as typeof import('../scripts/stack');

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const PACKAGE_DIR = path.join(ROOT, 'packages', 'contracts');
/** The workspace's TypeScript, run by path: the fresh project installs no TypeScript and no @types. */
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const ZOD_VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'zod', 'package.json'), 'utf8')) as { version: string })
  .version;

/** The environment of a command run as in another project: none of the npm settings of our own run. */
function outsideEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|INIT_CWD$)/i.test(name)));
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

async function sh(command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, env: outsideEnv(), maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}\n${stderr ?? ''}`, { cause: err });
  }
}

/** The ```ts blocks of the package README, by the file name written after the language. */
function readmeExamples(): Record<string, string> {
  const readme = fs.readFileSync(path.join(PACKAGE_DIR, 'README.md'), 'utf8');
  const blocks: Record<string, string> = {};
  for (const [, name, code] of readme.matchAll(/^```ts ([\w.-]+)\n([\s\S]*?)^```$/gm)) blocks[name!] = code!;
  return blocks;
}

const CONSUMER_CHECK = `
import { frontendContract, detectImageType, inspectImage, TaskStatusSchema, type ResponseOf, type TaskStatus } from '@pixelmill/contracts';
import { gifWithHugeFrame } from '@pixelmill/contracts/testing';

type Download = Extract<ResponseOf<typeof frontendContract.get>, { status: 200 }>['body'];
const bytes: Uint8Array = gifWithHugeFrame();
// A binary answer is a plain Uint8Array, both ways.
const download: Download = bytes;
const back: Uint8Array = download;
const type: 'image/png' | 'image/jpeg' | 'image/gif' | 'image/bmp' | 'image/tiff' | null = detectImageType(back);
const frames: number | undefined = inspectImage('image/gif', bytes)?.frameCount;
const status: TaskStatus = TaskStatusSchema.parse({ id: '00000000-0000-4000-8000-000000000000', state: 'finished' });
// @ts-expect-error: not a state of the contract (the types are real, not any)
const wrong: TaskStatus['state'] = 'done';
export const checked = [type, frames, status, wrong];
`;

/** A script that uses the package at run time and prints what it saw. */
const runtimeCheck = (load: string) => `${load}
const gif = testing.gifWithHugeFrame();
let sharedZod = false;
try {
  contracts.TaskIdSchema.parse('not a uuid');
} catch (err) {
  sharedZod = err instanceof zod.ZodError;
}
console.log(JSON.stringify({
  plainBytes: gif instanceof Uint8Array && gif.constructor === Uint8Array,
  type: contracts.detectImageType(gif),
  frame: contracts.inspectImage('image/gif', gif).largestFrame,
  state: contracts.TaskStateSchema.parse('finished'),
  path: contracts.frontendContract.get.path,
  sharedZod,
  resolved,
}));
`;

describe('@pixelmill/contracts from a fresh project outside the workspace', () => {
  let dir: string;
  let app: string;
  let packed: { filename: string; size: number; files: Array<{ path: string }> };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-contracts-package-'));

    // A clean checkout of the package (no dist/), packed as a user would: prepack must build it.
    // Its dev tools come from the workspace's node_modules, linked beside it.
    const checkout = path.join(dir, 'checkout');
    fs.mkdirSync(checkout);
    fs.copyFileSync(path.join(ROOT, 'tsconfig.base.json'), path.join(checkout, 'tsconfig.base.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(checkout, 'node_modules'), 'dir');
    const source = path.join(checkout, 'packages', 'contracts');
    fs.cpSync(PACKAGE_DIR, source, { recursive: true, filter: (from) => !/[\\/](dist|node_modules|\.turbo)$/.test(from) });
    const packOutput = await sh('npm', ['pack', '--json', '--pack-destination', dir], source);
    // The build's log comes first; npm's JSON answer last.
    const answer = [...packOutput.matchAll(/^\[$/gm)].pop();
    if (!answer) throw new Error(`npm pack gave no JSON answer:\n${packOutput}`);
    [packed] = JSON.parse(packOutput.slice(answer.index)) as [typeof packed];

    app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pixelmill-consumer', version: '1.0.0', private: true }));
    await sh(
      'npm',
      ['install', path.join(dir, packed.filename), `zod@${ZOD_VERSION}`, 'axios@^1', '--prefer-offline', '--no-audit', '--no-fund'],
      app,
    );
  }, 300_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('when packed from a clean checkout, then prepack has built both formats with their declarations', () => {
    const files = packed.files.map((file) => file.path).sort();
    expect(files).toEqual(
      expect.arrayContaining([
        'CHANGELOG.md',
        'LICENSE',
        'README.md',
        'package.json',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/index.mjs',
        'dist/index.d.mts',
        'dist/testing/index.js',
        'dist/testing/index.d.ts',
        'dist/testing/index.mjs',
        'dist/testing/index.d.mts',
      ]),
    );
    expect(files.filter((file) => !file.startsWith('dist/'))).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
    // Installed as another project would: zod once, at the project's top, and no Node types.
    expect(fs.existsSync(path.join(app, 'node_modules', '@pixelmill', 'contracts', 'node_modules'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'node_modules', '@types', 'node'))).toBe(false);
  });

  it.each([
    [
      'a CommonJS script requires',
      'check.cjs',
      `const contracts = require('@pixelmill/contracts');
const testing = require('@pixelmill/contracts/testing');
const zod = require('zod');
const resolved = require.resolve('@pixelmill/contracts');`,
      'dist/index.js',
    ],
    [
      'an ES module imports',
      'check.mjs',
      `import * as contracts from '@pixelmill/contracts';
import * as testing from '@pixelmill/contracts/testing';
import * as zod from 'zod';
const resolved = import.meta.resolve('@pixelmill/contracts');`,
      'dist/index.mjs',
    ],
  ])('when %s the package, then it runs its build of that format with the project’s zod', async (_how, file, load, build) => {
    fs.writeFileSync(path.join(app, file), runtimeCheck(load));

    const seen = JSON.parse(await sh(process.execPath, [file], app)) as Record<string, unknown>;

    expect(seen).toEqual({
      plainBytes: true,
      type: 'image/gif',
      frame: { width: 65535, height: 65535 },
      state: 'finished',
      path: '/image/get',
      sharedZod: true,
      resolved: expect.stringMatching(new RegExp(`node_modules/@pixelmill/contracts/${build.replace('.', '\\.')}$`)),
    });
  });

  const typecheck = async (name: string, compilerOptions: Record<string, unknown>, files: Record<string, string>) => {
    for (const [file, code] of Object.entries(files)) fs.writeFileSync(path.join(app, file), code);
    const config = {
      // A browser's globals (zod's declarations name URL), none of Node's.
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: [],
        lib: ['ES2022', 'DOM'],
        target: 'ES2022',
        ...compilerOptions,
      },
      files: Object.keys(files),
    };
    fs.writeFileSync(path.join(app, `tsconfig.${name}.json`), JSON.stringify(config, null, 2));
    return sh(process.execPath, [TSC, '-p', `tsconfig.${name}.json`], app);
  };

  it('when tsc checks a .cts and an .mts with module node16, no @types/node and skipLibCheck off, then both pass', async () => {
    await expect(
      typecheck(
        'node16',
        { module: 'node16', moduleResolution: 'node16' },
        { 'check.cts': CONSUMER_CHECK, 'check-esm.mts': CONSUMER_CHECK },
      ),
    ).resolves.toBe('');
  });

  it('when tsc checks with module esnext and moduleResolution bundler, no @types/node and skipLibCheck off, then it passes', async () => {
    await expect(
      typecheck('bundler', { module: 'esnext', moduleResolution: 'bundler' }, { 'check-bundler.ts': CONSUMER_CHECK }),
    ).resolves.toBe('');
  });

  it('when tsc checks code that passes a Node Buffer where the package takes bytes, then the check fails without @types/node', async () => {
    // The guard of the two checks above: without Node's types a Buffer is unknown, so a declaration
    // of the package that named one would fail them the same way.
    await expect(
      typecheck(
        'guard',
        { module: 'node16', moduleResolution: 'node16' },
        { 'guard.mts': `export const bytes: Buffer = new Uint8Array(1);\n` },
      ),
    ).rejects.toThrow(/Cannot find name 'Buffer'/);
  });

  describe('against a running pixelmill', () => {
    let stack: Awaited<ReturnType<typeof startStack>>;
    let frontend: string;

    beforeAll(async () => {
      stack = await startStack({ dataDir: path.join(dir, 'data'), logDir: path.join(dir, 'logs'), freePorts: true });
      frontend = stack.urls.frontend!;

      // The README's examples, compiled as the project's own modules, browser-like (DOM, no Node types).
      const examples = readmeExamples();
      fs.writeFileSync(path.join(app, 'pixelmill-client.mts'), examples['pixelmill-client.ts']!);
      fs.writeFileSync(path.join(app, 'types-only.mts'), examples['types-only.ts']!);
      const config = {
        compilerOptions: {
          strict: true,
          skipLibCheck: false,
          types: [],
          lib: ['ES2022', 'DOM'],
          target: 'ES2022',
          module: 'node16',
          moduleResolution: 'node16',
          outDir: 'out',
        },
        files: ['pixelmill-client.mts', 'types-only.mts'],
      };
      fs.writeFileSync(path.join(app, 'tsconfig.examples.json'), JSON.stringify(config, null, 2));
      await sh(process.execPath, [TSC, '-p', 'tsconfig.examples.json'], app);
    }, 120_000);

    afterAll(async () => {
      await stack?.stop();
    });

    it('when the README example processes an image, then it uploads, waits and downloads the inverted image', async () => {
      const bitmap = makeBitmap(40, 30);
      const input = path.join(dir, 'input.png');
      const output = path.join(dir, 'output.png');
      fs.writeFileSync(input, await encode('image/png', bitmap));
      fs.writeFileSync(
        path.join(app, 'run-client.mjs'),
        `import fs from 'node:fs';
import { processImage } from './out/pixelmill-client.mjs';
const [baseURL, input, output] = process.argv.slice(2);
const file = fs.readFileSync(input);
// A view into a larger buffer, as a browser's bytes may be.
const larger = new Uint8Array(file.length + 64);
larger.set(file, 32);
const result = await processImage(baseURL, larger.subarray(32, 32 + file.length), 'invert');
fs.writeFileSync(output, result);
console.log(JSON.stringify({ plain: result.constructor === Uint8Array }));
`,
      );

      const seen = JSON.parse(await sh(process.execPath, ['run-client.mjs', frontend, input, output], app)) as unknown;

      expect(seen).toEqual({ plain: true });
      const inverted = compare(bitmap, decode('image/png', fs.readFileSync(output)), (r, g, b, a) => [255 - r, 255 - g, 255 - b, a]);
      expect(inverted).toEqual({ maxDiff: 0, meanDiff: 0, alphaChanged: 0 });
    });

    it('when the README types-only example is compiled, then it loads nothing of the package, and its calls work', async () => {
      const compiled = fs.readFileSync(path.join(app, 'out', 'types-only.mjs'), 'utf8');
      expect(compiled).not.toContain('@pixelmill/contracts');
      const input = path.join(dir, 'types-only.png');
      fs.writeFileSync(input, await encode('image/png', makeBitmap(8, 8)));
      fs.writeFileSync(
        path.join(app, 'run-types-only.mjs'),
        `import fs from 'node:fs';
import { startImage, stateOf } from './out/types-only.mjs';
const [baseURL, input] = process.argv.slice(2);
const accepted = await startImage(baseURL, new Uint8Array(fs.readFileSync(input)), 'grayscale');
const status = await stateOf(baseURL, accepted.id);
console.log(JSON.stringify({ accepted, status }));
`,
      );

      const seen = JSON.parse(await sh(process.execPath, ['run-types-only.mjs', frontend, input], app)) as {
        accepted: { id: string; state: string };
        status: { id: string; state: string };
      };

      expect(seen.accepted).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), state: 'not_started' });
      expect(seen.status).toMatchObject({ id: seen.accepted.id, state: expect.stringMatching(/^(not_started|in_progress|finished)$/) });
    });
  });
});
