/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument --
   the workflow and compose files are read as plain YAML data: what these tests assert is their shape. */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
// The validator of action-validator (a WebAssembly build shipped in the npm package): GitHub's
// workflow schema, as a runner would read the file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { validateWorkflow } = require('@action-validator/core') as {
  validateWorkflow: (source: string) => { errors: unknown[] };
};

/** The deployment files agree with the apps there are and with each other. */

const ROOT = path.resolve(__dirname, '..');
const WORKFLOWS = path.join(ROOT, '.github', 'workflows');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const yamlOf = (file: string) => parse(read(file), { merge: true }) as Record<string, any>;
const APPS = fs.readdirSync(path.join(ROOT, 'apps')).filter((app) => fs.existsSync(path.join(ROOT, 'apps', app, 'package.json')));
const SERVERS = APPS.filter((app) => app !== 'worker');
const DATA_APPS = ['kv', 'taskdb', 'storage'];

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
