import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const settingsModule = require('../scripts/settings') as typeof import('../scripts/settings');

const { SERVICES, PER_SERVICE_ONLY, LAUNCHER_VARIABLES, loadSchemas, keysOf, knownNames, readSettings, planSettings } = settingsModule;

type Settings = ReturnType<typeof readSettings>;

const EXAMPLE = path.resolve(__dirname, '../.env.example');
/** A commented-out variable line of .env.example: `# NAME=value`. */
const VARIABLE_LINE = /^# ([A-Z][A-Z0-9_]*)=(.*)$/;
const KEY = 'key-of-the-test-0123456789';
const TOKEN = 'internal-token-of-the-user-0123';

/** The built apps' config schemas: what the services themselves parse. */
const schemas = loadSchemas();
const keys = keysOf(schemas) as Record<string, string[]>;

const fromFile = (values: Record<string, string>): Settings =>
  Object.fromEntries(Object.entries(values).map(([name, value]) => [name, { value, source: '.env' }]));

/** What a service's schema makes of nothing: its defaults. */
type Default = string | number | boolean | readonly string[] | undefined;
const defaultsOf = (service: string): Record<string, Default> =>
  (schemas as Record<string, { parse(v: object): Record<string, Default> }>)[service]!.parse({});

describe('.env.example', () => {
  const lines = fs.readFileSync(EXAMPLE, 'utf8').split('\n');
  /** Name → the value shown. */
  const listed = new Map<string, string>();
  for (const match of lines.map((line) => VARIABLE_LINE.exec(line))) if (match) listed.set(match[1]!, match[2]!);

  it('when a variable is listed, then a line of comment above it says what it is', () => {
    const uncommented = lines.filter(
      (line, index) => VARIABLE_LINE.test(line) && !/^# (?![A-Z][A-Z0-9_]*=)\S/.test(lines[index - 1] ?? ''),
    );

    expect(uncommented).toEqual([]);
  });

  it.each(SERVICES)('when %s reads a variable, then .env.example lists it, plain or in its per-service form', (service) => {
    const missing = keys[service]!.filter((key) => !listed.has(key) && !listed.has(`${service.toUpperCase()}_${key}`));

    expect(missing).toEqual([]);
  });

  it('when a variable is listed, then npm start or a service reads it under that name', () => {
    const known = knownNames(schemas);

    expect([...listed.keys()].filter((name) => !known.has(name))).toEqual([]);
    expect(LAUNCHER_VARIABLES.filter((name) => !listed.has(name))).toEqual([]);
  });

  it('when a listed line has a value, then it is the default of every service it reaches (one listed per service excepted)', () => {
    const known = knownNames(schemas);
    const wrong: string[] = [];
    for (const [name, value] of listed) {
      if (value === '' || LAUNCHER_VARIABLES.includes(name)) continue;
      const { service, key } = known.get(name)!;
      const reached = service
        ? [{ service, key: key! }]
        : SERVICES.filter((s) => keys[s]!.includes(name) && !listed.has(`${s.toUpperCase()}_${name}`)).map((s) => ({
            service: s,
            key: name,
          }));
      for (const target of reached) {
        const fallback = defaultsOf(target.service)[target.key];
        if (fallback !== undefined && String(fallback) !== value)
          wrong.push(`${name}=${value}: ${target.service}'s default is ${String(fallback)}`);
      }
    }

    expect(wrong).toEqual([]);
  });

  it('when every line is uncommented, then npm start accepts it all, warning only that it sets KV_URL itself', () => {
    const uncommented = lines.map((line) => (VARIABLE_LINE.test(line) ? line.slice(2) : '')).join('\n');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-env-'));
    try {
      fs.writeFileSync(path.join(dir, '.env'), uncommented);
      const plan = planSettings(readSettings({ envFile: path.join(dir, '.env'), env: {}, schemas }), schemas);

      expect(plan.problems).toEqual([]);
      expect(plan.warnings).toEqual([expect.stringMatching(/^KV_URL .* is ignored/)]);
      expect(plan.ports).toEqual({ kv: 3000, taskdb: 3001, storage: 3002, master: 3003, frontend: 8080 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when a variable is given per service, then its name is no plain variable of any service', () => {
    const plain = new Set(Object.values(keys).flat());
    const clashes = SERVICES.flatMap((service) => keys[service]!.map((key) => `${service.toUpperCase()}_${key}`)).filter((name) =>
      plain.has(name),
    );

    expect(clashes).toEqual([]);
  });
});

describe('npm start settings', () => {
  it('when a plain variable is set, then every service whose schema reads it gets it, and no other', () => {
    const plan = planSettings(fromFile({ MAX_UPLOAD_BYTES: '1000', API_KEYS: KEY, LOG_LEVEL: 'warn' }), schemas);

    expect(plan.problems).toEqual([]);
    expect(Object.keys(plan.envFor).filter((s) => plan.envFor[s]!.MAX_UPLOAD_BYTES === '1000')).toEqual(['master', 'frontend']);
    expect(Object.keys(plan.envFor).filter((s) => plan.envFor[s]!.API_KEYS === KEY)).toEqual(['frontend']);
    expect(Object.keys(plan.envFor).filter((s) => plan.envFor[s]!.LOG_LEVEL === 'warn')).toEqual(SERVICES);
    expect(plan.applied).toEqual({ MAX_UPLOAD_BYTES: ['master', 'frontend'], API_KEYS: ['frontend'], LOG_LEVEL: SERVICES });
  });

  it("when the user sets the tokens, then they are the stack's, and a worker is handed no internal secret", () => {
    const plan = planSettings(
      fromFile({ INTERNAL_TOKEN: TOKEN, WORKER_TOKEN: `worker-${TOKEN}`, URL_SIGNING_KEY: `signing-${TOKEN}` }),
      schemas,
    );

    expect(plan.problems).toEqual([]);
    expect(plan.tokens).toEqual({ internal: TOKEN, worker: `worker-${TOKEN}` });
    // The tokens reach the services through the stack, which gives a worker its own only.
    for (const env of Object.values(plan.envFor)) expect(env).not.toHaveProperty('INTERNAL_TOKEN');
    expect(plan.envFor.worker).toEqual({});
    expect(plan.envFor.master!.URL_SIGNING_KEY).toBe(`signing-${TOKEN}`);
  });

  it('when a variable is given per service too, then that service gets the per-service value and the others the plain one', () => {
    const plan = planSettings(fromFile({ SHUTDOWN_TIMEOUT_MS: '5000', WORKER_SHUTDOWN_TIMEOUT_MS: '40000' }), schemas);

    expect(plan.envFor.worker!.SHUTDOWN_TIMEOUT_MS).toBe('40000');
    expect(plan.envFor.kv!.SHUTDOWN_TIMEOUT_MS).toBe('5000');
    expect(plan.applied).toEqual({
      SHUTDOWN_TIMEOUT_MS: ['kv', 'taskdb', 'storage', 'master', 'frontend'],
      WORKER_SHUTDOWN_TIMEOUT_MS: ['worker'],
    });
  });

  it.each(PER_SERVICE_ONLY)('when %s is set plainly, then it is ignored with a warning; per service it is taken', (name) => {
    const value = { PORT: '9999', HOST: '0.0.0.0', DATA_DIR: '/tmp/somewhere', ADVERTISE_URL: 'http://storage.example:3002' }[name]!;
    const plan = planSettings(fromFile({ [name]: value, [`STORAGE_${name}`]: value }), schemas);

    const example = name === 'DATA_DIR' ? 'KV_DATA_DIR' : `FRONTEND_${name}`;
    expect(plan.warnings).toEqual([`${name} (from .env) is ignored: npm start needs one per service, e.g. ${example}`]);
    expect(plan.problems).toEqual([]);
    for (const service of ['kv', 'master']) expect(plan.envFor[service]).not.toHaveProperty(name);
    if (name === 'PORT') expect(plan.ports).toEqual({ storage: 9999 });
    else expect(plan.envFor.storage![name]).toBe(value);
  });

  it('when KV_URL, a per-service token or an unknown name is set, then each is ignored with a warning naming it', () => {
    const plan = planSettings(fromFile({ KV_URL: 'http://elsewhere:3000', MASTER_INTERNAL_TOKEN: TOKEN, API_KEY: KEY }), schemas);

    expect(plan.warnings).toEqual([
      'KV_URL (from .env) is ignored: npm start points every service at the kv it runs',
      'MASTER_INTERNAL_TOKEN (from .env) is ignored: the stack has one INTERNAL_TOKEN, set it without a prefix',
      'API_KEY (from .env) is read by no service; ignored',
    ]);
    expect(plan.tokens).toEqual({});
    for (const env of Object.values(plan.envFor)) expect(env).toEqual({});
  });

  it('when values are bad, then each is reported once with its name, its origin and the services that read it', () => {
    const plan = planSettings(
      {
        ...fromFile({ MAX_UPLOAD_BYTES: 'lots', INTERNAL_TOKEN: 'short' }),
        WORKER_PNG_DEFLATE_LEVEL: { value: '12', source: 'the environment' },
      },
      schemas,
    );

    expect(plan.problems).toEqual([
      expect.stringMatching(/^kv, taskdb, storage, master, frontend: INTERNAL_TOKEN \(from \.env\): must be at least 16 characters$/),
      expect.stringMatching(/^master, frontend: MAX_UPLOAD_BYTES \(from \.env\): .*number/),
      expect.stringMatching(/^worker: WORKER_PNG_DEFLATE_LEVEL \(from the environment\): .*9/),
    ]);
    // A secret's value is never repeated.
    expect(plan.problems.join('\n')).not.toContain('short');
  });

  it('when .env and the environment both set a variable, then the environment wins; an empty one too', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelmill-env-'));
    try {
      const envFile = path.join(dir, '.env');
      fs.writeFileSync(envFile, `# the user's settings\nAPI_KEYS="${KEY}"\nUPLOAD_BURST=5\nJPEG_QUALITY=70\n`);
      const settings = readSettings({ envFile, env: { UPLOAD_BURST: '7', JPEG_QUALITY: '', UNRELATED: 'x' }, schemas });

      expect(settings).toEqual({
        API_KEYS: { value: KEY, source: expect.stringMatching(/\.env$/) },
        UPLOAD_BURST: { value: '7', source: 'the environment' },
        JPEG_QUALITY: { value: '', source: 'the environment' },
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("when there is no .env, then the settings are the environment's; when a named file is missing, then reading fails", () => {
    const missing = path.join(os.tmpdir(), `pixelmill-no-such-${process.pid}.env`);

    expect(readSettings({ envFile: missing, env: { LOG_LEVEL: 'debug' }, schemas })).toEqual({
      LOG_LEVEL: { value: 'debug', source: 'the environment' },
    });
    expect(() => readSettings({ envFile: missing, required: true, env: {}, schemas })).toThrow(/cannot read .*pixelmill-no-such/);
  });
});
