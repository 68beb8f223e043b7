// The user's settings for `npm start`: read from a .env file and the environment (which wins), and
// handed to each service as far as its own config schema reads them, so a service gets its settings
// and no other service's secrets (a worker never sees INTERNAL_TOKEN or API_KEYS).
//
//   NAME=value            every service whose schema reads NAME
//   <SERVICE>_NAME=value  that service only (KV_, TASKDB_, STORAGE_, MASTER_, FRONTEND_, WORKER_); wins over NAME
//
// PORT, HOST, DATA_DIR and ADVERTISE_URL differ per service by nature, so they are taken in the
// per-service form only (FRONTEND_PORT=8081). KV_URL is the launcher's: it points every service at
// the kv it runs. INTERNAL_TOKEN and WORKER_TOKEN are one pair for the whole stack and replace the
// ones the launcher would generate.
const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
const { ConfigError, parseConfig } = require('@pixelmill/kit');

const ROOT = path.resolve(__dirname, '..');

/** Every service npm start runs, in start order. */
const SERVICES = ['kv', 'taskdb', 'storage', 'master', 'frontend', 'worker'];
/** Given per service only: one value for all would make them collide. */
const PER_SERVICE_ONLY = ['PORT', 'HOST', 'DATA_DIR', 'ADVERTISE_URL'];
/** One pair for the stack, which also uses them itself (to wait for the services' registrations). */
const STACK_TOKENS = ['INTERNAL_TOKEN', 'WORKER_TOKEN'];
/** Set by the launcher to the kv it runs. */
const LAUNCHER_SET = ['KV_URL'];
/** Read by the launcher itself, not by a service. */
const LAUNCHER_VARIABLES = ['PIXELMILL_DATA_DIR'];

const prefixOf = (service) => `${service.toUpperCase()}_`;

/** The built config schema of each service (apps/<name>/dist/config.js exports `<Name>ConfigSchema`). */
function loadSchemas(root = ROOT) {
  return Object.fromEntries(
    SERVICES.map((service) => {
      const exportName = `${service[0].toUpperCase()}${service.slice(1)}ConfigSchema`;
      const schema = require(path.join(root, 'apps', service, 'dist', 'config.js'))[exportName];
      if (!schema?.shape) throw new Error(`apps/${service}/dist/config.js exports no ${exportName} object schema`);
      return [service, schema];
    }),
  );
}

/** The variables each service's schema reads. */
const keysOf = (schemas) => Object.fromEntries(Object.entries(schemas).map(([service, schema]) => [service, Object.keys(schema.shape)]));

/**
 * The names a user may set: the plain ones, the per-service ones, and the launcher's own.
 * @returns {Map<string, {service?: string, key?: string}>}
 */
function knownNames(schemas) {
  const names = new Map(LAUNCHER_VARIABLES.map((name) => [name, {}]));
  for (const [service, keys] of Object.entries(keysOf(schemas))) {
    for (const key of keys) {
      if (!names.has(key)) names.set(key, {});
      names.set(`${prefixOf(service)}${key}`, { service, key });
    }
  }
  return names;
}

/**
 * The settings in force: those of `envFile` (when it exists; `required`: it must), overridden by
 * those of `env`. Only names that pixelmill knows are taken from `env`; every name of the file is.
 * @returns {Record<string, {value: string, source: string}>}
 */
function readSettings({ envFile = path.join(ROOT, '.env'), required = false, env = process.env, schemas }) {
  const relative = path.relative(process.cwd(), envFile);
  const label = relative && !relative.startsWith('..') ? relative : envFile;
  let text;
  try {
    text = fs.readFileSync(envFile, 'utf8');
  } catch (err) {
    if (err.code !== 'ENOENT' || required) throw new Error(`cannot read ${label}: ${err.message}`, { cause: err });
  }
  const settings = {};
  for (const [name, value] of Object.entries(text === undefined ? {} : util.parseEnv(text))) {
    settings[name] = { value, source: label };
  }
  for (const name of knownNames(schemas).keys()) {
    if (env[name] !== undefined) settings[name] = { value: env[name], source: 'the environment' };
  }
  return settings;
}

/**
 * Who gets what, checked with each service's own schema before anything starts.
 * @param {Record<string, {value: string, source: string}>} settings  from readSettings
 * @returns {{
 *   envFor: Record<string, Record<string, string>>, ports: Record<string, number>,
 *   tokens: {internal?: string, worker?: string}, dataDir?: string,
 *   applied: Record<string, string[]>, warnings: string[], problems: string[]
 * }}
 */
function planSettings(settings, schemas) {
  const known = knownNames(schemas);
  const warnings = [];
  const given = (name) => settings[name] !== undefined && settings[name].value !== '';
  const describe = (name) => `${name} (from ${settings[name].source})`;

  for (const name of Object.keys(settings)) {
    const { service, key } = known.get(name) ?? {};
    if (!known.has(name)) warnings.push(`${describe(name)} is read by no service; ignored`);
    else if (!service && PER_SERVICE_ONLY.includes(name) && given(name)) {
      const example = ['frontend', ...SERVICES].find((s) => name in schemas[s].shape);
      warnings.push(`${describe(name)} is ignored: npm start needs one per service, e.g. ${prefixOf(example)}${name}`);
    } else if (LAUNCHER_SET.includes(key ?? name) && given(name)) {
      warnings.push(`${describe(name)} is ignored: npm start points every service at the kv it runs`);
    } else if (service && STACK_TOKENS.includes(key) && given(name)) {
      warnings.push(`${describe(name)} is ignored: the stack has one ${key}, set it without a prefix`);
    }
  }

  const tokens = {};
  if (given('INTERNAL_TOKEN')) tokens.internal = settings.INTERNAL_TOKEN.value;
  if (given('WORKER_TOKEN')) tokens.worker = settings.WORKER_TOKEN.value;
  const dataDir = given('PIXELMILL_DATA_DIR') ? settings.PIXELMILL_DATA_DIR.value : undefined;

  const envFor = {};
  const ports = {};
  /** The name the user set → the services it reached (for the summary). */
  const applied = {};
  /** Problem → the services that have it: a shared variable's bad value is reported once. */
  const problems = new Map();
  for (const [service, schema] of Object.entries(schemas)) {
    const env = {};
    const origin = {};
    for (const key of Object.keys(schema.shape)) {
      if (LAUNCHER_SET.includes(key) || STACK_TOKENS.includes(key)) continue;
      const name = [`${prefixOf(service)}${key}`, PER_SERVICE_ONLY.includes(key) ? undefined : key].find(
        (candidate) => candidate && settings[candidate] !== undefined,
      );
      if (!name) continue;
      env[key] = settings[name].value;
      origin[key] = name;
    }
    // The tokens are checked too, but reach the services through the stack (stack.js gives a worker only its own).
    const checked = { ...env };
    for (const [key, value] of [
      ['INTERNAL_TOKEN', tokens.internal],
      ['WORKER_TOKEN', tokens.worker],
    ]) {
      if (value !== undefined && key in schema.shape) {
        checked[key] = value;
        origin[key] = key;
      }
    }
    try {
      parseConfig(schema, checked);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const problem of err.problems) {
        const key = problem.slice(0, problem.indexOf(':'));
        const text = origin[key] ? `${describe(origin[key])}${problem.slice(key.length)}` : problem;
        problems.set(text, [...(problems.get(text) ?? []), service]);
      }
    }
    for (const key of Object.keys(origin)) (applied[origin[key]] ??= []).push(service);
    if (env.PORT !== undefined && env.PORT !== '') ports[service] = Number(env.PORT);
    delete env.PORT;
    envFor[service] = env;
  }
  return {
    envFor,
    ports,
    tokens,
    dataDir,
    applied,
    warnings,
    problems: [...problems].map(([text, services]) => `${services.join(', ')}: ${text}`),
  };
}

module.exports = { SERVICES, PER_SERVICE_ONLY, LAUNCHER_VARIABLES, loadSchemas, keysOf, knownNames, readSettings, planSettings };
