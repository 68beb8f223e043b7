/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument --
   the workflow and compose files are read as plain YAML data: what these tests assert is their shape. */
import fs from 'node:fs';
import path from 'node:path';
import { parse, type YAMLSeq } from 'yaml';
// The validator of action-validator (a WebAssembly build shipped in the npm package): GitHub's
// workflow schema, as a runner would read the file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { validateWorkflow } = require('@action-validator/core') as {
  validateWorkflow: (source: string) => { errors: unknown[] };
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { loadSchemas, keysOf } = require('../scripts/settings') as typeof import('../scripts/settings');

/** The deployment files agree with the apps there are and with each other. */

const ROOT = path.resolve(__dirname, '..');
const WORKFLOWS = path.join(ROOT, '.github', 'workflows');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const yamlOf = (file: string) => parse(read(file), { merge: true }) as Record<string, any>;
const APPS = fs.readdirSync(path.join(ROOT, 'apps')).filter((app) => fs.existsSync(path.join(ROOT, 'apps', app, 'package.json')));
const SERVERS = APPS.filter((app) => app !== 'worker');
const DATA_APPS = ['kv', 'taskdb', 'storage'];

/** compose's `!override` (replaces what the files before set) and `!reset` (removes it), as read from a file. */
class Override {
  constructor(readonly value: unknown) {}
}
class Reset {}
const COMPOSE_TAGS = [
  { tag: '!override', collection: 'seq' as const, resolve: (seq: YAMLSeq) => new Override(seq.toJSON()) },
  { tag: '!reset', collection: 'seq' as const, resolve: () => new Reset() },
];
/** compose's interpolation of `${NAME:-default}`, `${NAME:?error}`, `${NAME}` and `$$` with `env`. */
const interpolate = (text: string, env: Record<string, string>): string =>
  text.replace(/\$\$|\$\{([A-Z][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g, (_whole, name?: string, kind?: string, rest?: string) => {
    if (name === undefined) return '$';
    if (env[name]) return env[name];
    if (kind === ':?') throw new Error(`${name} is required: ${rest}`);
    return kind === ':-' ? rest! : '';
  });
/** A compose file as compose reads it, with the variables of `env`. */
const composeOf = (file: string, env: Record<string, string>) =>
  parse(interpolate(read(file), env), { merge: true, customTags: COMPOSE_TAGS }) as Record<string, any>;
const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Override) && !(value instanceof Reset);
/** Attributes a later file replaces rather than appends to (compose's merge rules). */
const REPLACED = new Set(['command', 'entrypoint', 'test']);

/** `over` merged onto `base` as `docker compose -f base -f over` does: mappings merged, sequences appended. */
function mergeCompose(base: unknown, over: unknown, key = ''): unknown {
  if (over instanceof Override) return over.value;
  if (isMapping(over)) {
    const merged: Record<string, unknown> = isMapping(base) ? { ...base } : {};
    for (const [name, value] of Object.entries(over)) {
      if (value instanceof Reset) delete merged[name];
      else merged[name] = mergeCompose(merged[name], value, name);
    }
    return merged;
  }
  if (Array.isArray(base) && Array.isArray(over) && !REPLACED.has(key)) return [...base, ...over.filter((item) => !base.includes(item))];
  return over;
}

/** The variables each app's config schema reads (the built apps' schemas). */
const schemaKeys = keysOf(loadSchemas()) as Record<string, string[]>;
/** `NAME=value` assignments in a service's command, as the scaled-out form's `env` sets ADVERTISE_URL. */
const commandVariables = (service: any): Record<string, string> => {
  const command = [service.command ?? []].flat().join(' ');
  return Object.fromEntries([...command.matchAll(/\b([A-Z][A-Z0-9_]*)="?([^"\s]*)/g)].map((m) => [m[1]!, m[2]!]));
};

/** Each app of a compose model is given values only of variables its schema reads; an empty value only blanks one of stack.env's. */
function expectOnlyVariablesTheAppsRead(services: Record<string, any>): void {
  const unread = Object.fromEntries(
    APPS.map((app) => {
      const given = { ...(services[app].environment as Record<string, string>), ...commandVariables(services[app]) };
      return [app, Object.keys(given).filter((name) => given[name] !== '' && !schemaKeys[app]!.includes(name))];
    }).filter(([, names]) => names!.length > 0),
  );
  expect(unread).toEqual({});
}

describe('workflows', () => {
  const files = fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));

  test('the validator refuses a broken workflow (so its silence below means something)', () => {
    expect(validateWorkflow('on: push\njobs:\n  build:\n    steps:\n      - run: echo\n').errors).not.toEqual([]);
    expect(validateWorkflow('on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n').errors).toEqual([]);
  });

  test.each(files)('%s is a valid GitHub workflow', (file) => {
    expect(validateWorkflow(fs.readFileSync(path.join(WORKFLOWS, file), 'utf8')).errors).toEqual([]);
  });

  test('ci tests on Node 20, 22 and 24 with npm ci then npm test, and builds every app’s image without pushing', () => {
    const ci = yamlOf('.github/workflows/ci.yml');
    expect(ci.jobs.test.strategy.matrix.node).toEqual([20, 22, 24]);
    const runs = (ci.jobs.test.steps as Array<{ run?: string }>).map((s) => s.run).filter(Boolean);
    expect(runs.findIndex((r) => r!.startsWith('npm ci'))).toBeLessThan(runs.indexOf('npm test'));
    expect([...ci.jobs.image.strategy.matrix.app].sort()).toEqual([...APPS].sort());
    const build = (ci.jobs.image.steps as Array<{ uses?: string; with?: Record<string, unknown> }>).find((s) =>
      s.uses?.startsWith('docker/build-push-action'),
    );
    expect(build?.with).toMatchObject({ file: 'Dockerfile', push: false, 'build-args': 'APP=${{ matrix.app }}' });
    // The browser test's screenshots are kept, whether the tests passed or not.
    const artefacts = (ci.jobs.test.steps as Array<{ uses?: string; if?: string; with?: Record<string, unknown> }>).find((s) =>
      s.uses?.startsWith('actions/upload-artifact'),
    );
    expect(artefacts).toMatchObject({ if: 'always()', with: { path: 'apps/frontend/test-artifacts/' } });
  });

  test('deploy runs after ci succeeds on main, or by hand for one named app, and pushes to GHCR', () => {
    const deploy = yamlOf('.github/workflows/deploy.yml');
    const ciName = yamlOf('.github/workflows/ci.yml').name;
    expect(deploy.on.workflow_run).toEqual({ workflows: [ciName], types: ['completed'], branches: ['main'] });
    expect(deploy.jobs.affected.if).toContain("github.event.workflow_run.conclusion == 'success'");
    expect([...deploy.on.workflow_dispatch.inputs.service.options].sort()).toEqual([...APPS].sort());
    expect(deploy.jobs.affected.steps[0].with['fetch-depth']).toBe(0);
    expect(deploy.jobs.image.permissions.packages).toBe('write');
    const push = (deploy.jobs.image.steps as Array<{ uses?: string; with?: Record<string, unknown> }>).find((s) =>
      s.uses?.startsWith('docker/build-push-action'),
    );
    expect(push?.with).toMatchObject({ push: true, file: 'Dockerfile', 'build-args': 'APP=${{ matrix.app }}' });
    // The list of all apps the job falls back to is the list of apps.
    const script = (deploy.jobs.affected.steps as Array<{ id?: string; run?: string }>).find((s) => s.id === 'apps')!.run!;
    expect((JSON.parse(/^\s*all='(\[[^']*\])'$/m.exec(script)![1]!) as string[]).sort()).toEqual([...APPS].sort());
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => ({ from: m[1], name: m[2] }));

  test('a final stage per app, chosen by APP; servers check /healthz, the worker has no port', () => {
    expect(stages.at(-1)).toEqual({ from: 'app-${APP}', name: undefined });
    const final = stages.filter((s) => s.name?.startsWith('app-')).map((s) => [s.name!.slice(4), s.from]);
    expect(final.map(([app]) => app).sort()).toEqual([...APPS].sort());
    for (const [app, from] of final) expect([app, from]).toEqual([app, app === 'worker' ? 'runtime' : 'server']);
    expect(dockerfile).toMatch(/FROM runtime AS server\nHEALTHCHECK [^\n]*\\\n\s*CMD \["node", "-e", "fetch\([^\n]*\/healthz/);
  });

  test('runs node on the built main.js as PID 1 (exec form), as the unprivileged user', () => {
    expect(dockerfile).toMatch(/^WORKDIR \/app\/apps\/\$\{APP\}\nUSER node\nCMD \["node", "dist\/main\.js"\]$/m);
  });

  test('each server stage sets the port its app defaults to', () => {
    for (const app of SERVERS) {
      const config = read(`apps/${app}/src/config.ts`);
      const port = /PORT: PortSchema\.default\((\d+)\)/.exec(config)![1];
      expect([app, dockerfile]).toEqual([app, expect.stringMatching(new RegExp(`AS app-${app}\\nENV PORT=${port}\\b`))]);
    }
  });
});

describe('compose.yaml', () => {
  const compose = yamlOf('compose.yaml');
  const services = compose.services as Record<string, any>;

  test('runs every app from its image, built from the Dockerfile with APP', () => {
    expect(Object.keys(services).sort()).toEqual([...APPS].sort());
    for (const [name, service] of Object.entries(services)) {
      expect([name, service.image]).toEqual([name, expect.stringMatching(new RegExp(`^ghcr\\.io/.+/pixelmill-${name}:`))]);
      expect([name, service.build]).toEqual([name, { context: '.', dockerfile: 'Dockerfile', args: { APP: name } }]);
      expect([name, service.env_file]).toEqual([name, 'stack.env']);
    }
  });

  test('publishes only the frontend; servers listen on all interfaces and advertise their service name', () => {
    const kvPort = services.kv.environment.PORT;
    for (const [name, service] of Object.entries(services)) {
      expect([name, service.ports !== undefined]).toEqual([name, name === 'frontend']);
      if (name !== 'kv') expect([name, service.environment.KV_URL]).toEqual([name, `http://kv:${kvPort}`]);
      if (name === 'worker') continue;
      expect([name, service.environment.HOST]).toEqual([name, '0.0.0.0']);
      expect([name, service.environment.ADVERTISE_URL]).toEqual([name, `http://${name}:${service.environment.PORT}`]);
    }
    expect(services.frontend.ports).toEqual([`\${PIXELMILL_PORT:-8080}:${services.frontend.environment.PORT}`]);
  });

  test('keeps the data of kv, taskdb and storage in named volumes; the worker holds no internal token', () => {
    for (const name of DATA_APPS) {
      const [volume, target] = String(services[name].volumes[0]).split(':');
      expect([name, target, services[name].environment.DATA_DIR]).toEqual([name, '/data', '/data']);
      expect(Object.keys(compose.volumes)).toContain(volume);
    }
    expect(services.worker.environment.INTERNAL_TOKEN).toBe('');
  });

  test("each app is given only variables its config schema reads (an empty value blanks one of stack.env's)", () => {
    expectOnlyVariablesTheAppsRead(services);
  });

  test('the tokens come from stack.env, which git ignores; the example has both and starts nothing as it is', () => {
    expect(read('.gitignore').split('\n')).toContain('stack.env');
    const example = read('stack.env.example');
    for (const token of ['INTERNAL_TOKEN', 'WORKER_TOKEN']) {
      const value = new RegExp(`^${token}=(.*)$`, 'm').exec(example)![1]!;
      // Shorter than the 16 characters the services require: a copied example fails loudly, never runs open.
      expect([token, value.length > 0 && value.length < 16]).toEqual([token, true]);
    }
  });
});

describe('compose.scale.yaml (with compose.yaml: several instances, PostgreSQL, MinIO, Redis)', () => {
  const text = read('compose.scale.yaml');
  /** The variables the file fills in with ${NAME:?...}: required, so a missing one stops compose. */
  const required = [...new Set([...text.matchAll(/\$\{([A-Z][A-Z0-9_]*):\?[^}]*\}/g)].map((m) => m[1]!))];
  /** What scale.env holds: a value of its own for each. */
  const env = Object.fromEntries(required.map((name) => [name, `${name.toLowerCase().replace(/_/g, '-')}-of-the-test`]));
  const base = composeOf('compose.yaml', env);
  const scale = composeOf('compose.scale.yaml', env);
  const compose = mergeCompose(base, scale) as Record<string, any>;
  const services = compose.services as Record<string, any>;
  const ENGINES = { postgres: /^postgres:\d+/, minio: /^minio\/minio(:|$)/, 'minio-init': /^minio\/mc(:|$)/, redis: /^redis:\d+/ };
  const REPLICAS = { kv: undefined, taskdb: 2, storage: 2, master: 2, frontend: 2, worker: 3 };

  test("adds only what differs: the apps keep compose.yaml's images and builds; the engines run from their official images", () => {
    for (const app of APPS) {
      expect([app, scale.services[app]?.image, scale.services[app]?.build]).toEqual([app, undefined, undefined]);
      expect([app, services[app].env_file]).toEqual([app, 'stack.env']);
    }
    expect(Object.keys(services).sort()).toEqual([...APPS, ...Object.keys(ENGINES)].sort());
    for (const [name, image] of Object.entries(ENGINES)) expect([name, services[name].image]).toEqual([name, expect.stringMatching(image)]);
  });

  test('runs 2 frontends, masters, taskdbs and storages, 3 workers and one kv', () => {
    expect(Object.fromEntries(APPS.map((app) => [app, services[app].deploy?.replicas]))).toEqual(REPLICAS);
  });

  test("each replica advertises its own address, its container's host name at its PORT, with node still PID 1", () => {
    expect(read('Dockerfile')).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
    for (const app of SERVERS) {
      if (REPLICAS[app as keyof typeof REPLICAS] === undefined) {
        expect([app, services[app].command, services[app].environment.ADVERTISE_URL]).toEqual([
          app,
          undefined,
          `http://${app}:${services[app].environment.PORT}`,
        ]);
        continue;
      }
      expect([app, services[app].command]).toEqual([
        app,
        ['sh', '-c', 'exec env ADVERTISE_URL="http://$HOSTNAME:$PORT" node dist/main.js'],
      ]);
      expect([app, services[app].environment.PORT]).toEqual([app, expect.stringMatching(/^\d+$/)]);
    }
  });

  test('publishes only the frontends, one host port each from one range', () => {
    for (const [name, service] of Object.entries(services))
      expect([name, service.ports !== undefined]).toEqual([name, name === 'frontend']);
    expect(services.frontend.ports).toEqual([`8080-8081:${services.frontend.environment.PORT}`]);
    expect(text).toContain('${PIXELMILL_PORTS:-8080-8081}:8080');
    const [first, last] = /^(\d+)-(\d+):/.exec(services.frontend.ports[0])!.slice(1).map(Number);
    expect(last! - first! + 1).toBe(REPLICAS.frontend);
  });

  test("each app is given only variables its config schema reads (an empty value blanks one of stack.env's)", () => {
    expectOnlyVariablesTheAppsRead(services);
  });

  test('taskdb and kv keep their state in the PostgreSQL service, once it is healthy', () => {
    const { POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD } = services.postgres.environment;
    expect(POSTGRES_PASSWORD).toBe(env.POSTGRES_PASSWORD);
    for (const app of ['taskdb', 'kv']) {
      const url = new URL(services[app].environment.DATABASE_URL);
      expect([app, url.protocol, url.username, url.password, url.host, url.pathname]).toEqual([
        app,
        'postgres:',
        POSTGRES_USER,
        POSTGRES_PASSWORD,
        'postgres:5432',
        `/${POSTGRES_DB}`,
      ]);
      expect([app, services[app].depends_on.postgres]).toEqual([app, { condition: 'service_healthy' }]);
    }
    expect((services.postgres.healthcheck.test as string[]).join(' ')).toContain(`pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB}`);
  });

  test('storage keeps the images in a MinIO bucket that minio-init creates, with a MinIO user of its own', () => {
    const { S3_BUCKET, S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = services.storage.environment;
    expect(S3_ENDPOINT).toBe('http://minio:9000');
    expect([AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]).toEqual([env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY]);
    const script = (services['minio-init'].command as string[]).join('\n');
    const alias = new RegExp(`^mc alias set (\\w+) ${S3_ENDPOINT} "\\$MINIO_ROOT_USER" "\\$MINIO_ROOT_PASSWORD"$`, 'm').exec(script)?.[1];
    expect(script).toContain(`mc mb --ignore-existing ${alias}/${S3_BUCKET}`);
    expect(script).toContain(`mc admin user add ${alias} "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"`);
    // minio-init gets storage's key and MinIO's root password; storage never gets the latter.
    expect(services['minio-init'].environment).toMatchObject({ AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY });
    expect(services['minio-init'].environment.MINIO_ROOT_PASSWORD).toBe(services.minio.environment.MINIO_ROOT_PASSWORD);
    expect(JSON.stringify(services.storage)).not.toContain(env.MINIO_ROOT_PASSWORD);
    expect(services.storage.depends_on['minio-init']).toEqual({ condition: 'service_completed_successfully' });
    expect(services['minio-init'].depends_on.minio).toEqual({ condition: 'service_healthy' });
    expect(services['minio-init'].restart).toBeUndefined();
    expect(services.minio.healthcheck.test).toEqual(['CMD', 'mc', 'ready', 'local']);
  });

  test('the frontends share the upload rate limit in the Redis service, once it is healthy', () => {
    expect(services.frontend.environment.REDIS_URL).toBe('redis://redis:6379');
    expect(services.frontend.depends_on.redis).toEqual({ condition: 'service_healthy' });
    expect(services.redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  test('the state lives in the named volumes of PostgreSQL and MinIO; the apps keep none', () => {
    for (const app of DATA_APPS) expect([app, services[app].volumes]).toEqual([app, undefined]);
    expect(services.postgres.volumes).toEqual(['postgres-data:/var/lib/postgresql/data']);
    expect(services.minio.volumes).toEqual([`minio-data:${(services.minio.command as string[]).at(-1)}`]);
    const mounted = Object.values(services).flatMap((service) =>
      ((service.volumes ?? []) as string[]).map((volume) => volume.split(':')[0]),
    );
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(mounted));
  });

  test('its passwords and keys come from scale.env, which git ignores, each only to the containers that use it', () => {
    expect(read('.gitignore').split('\n')).toContain('scale.env');
    const example = read('scale.env.example');
    // Listed there, and commented out: compose refuses to start the scaled-out form until each is set.
    for (const name of required) expect([name, example]).toEqual([name, expect.stringMatching(new RegExp(`^# ${name}=`, 'm'))]);
    const holders = (value: string) => Object.keys(services).filter((name) => JSON.stringify(services[name]).includes(value));
    expect(Object.fromEntries(required.map((name) => [name, holders(env[name]!)]))).toEqual({
      POSTGRES_PASSWORD: ['kv', 'taskdb', 'postgres'],
      MINIO_ROOT_USER: ['minio', 'minio-init'],
      MINIO_ROOT_PASSWORD: ['minio', 'minio-init'],
      AWS_ACCESS_KEY_ID: ['storage', 'minio-init'],
      AWS_SECRET_ACCESS_KEY: ['storage', 'minio-init'],
    });
  });
});
