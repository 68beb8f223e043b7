import fs from 'node:fs';
import { z } from 'zod';
import { formatLogLine } from './logger';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_HEADERS_TIMEOUT_MS } from './server';

export const PortSchema = z.coerce.number().int().min(0).max(65_535);
export const UrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
/** A name that fits in one segment of a kv key: letters, digits, ".", "_" and "-". */
export const InstanceIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" and "-" only (64 at most), starting with a letter or digit');
export const LogLevelSchema = z.enum(['error', 'warn', 'info', 'http', 'debug', 'silent']);

/** Tokens of the stack; a server without one leaves the routes it guards open. */
export const AuthEnvSchema = z.object({
  /** Guards kv, taskdb, storage and master's frontend side; services send it on every call. */
  INTERNAL_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Guards master's worker side; workers send it. */
  WORKER_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Signs storage URLs handed to workers (master and storage); derived from INTERNAL_TOKEN when unset. */
  URL_SIGNING_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
});

/** Environment every server shares; each app extends it with its own variables. */
export const ServerEnvSchema = z
  .object({
    HOST: z.string().min(1).default('127.0.0.1'),
    LOG_LEVEL: LogLevelSchema.default('info'),
    /** Where the others reach this service; defaults to http://HOST:PORT. */
    ADVERTISE_URL: UrlSchema.optional(),
    /**
     * This instance's name in kv (`services/<name>/<INSTANCE_ID>`), unique among the instances
     * of the service; defaults to a short hash of the advertised URL.
     */
    INSTANCE_ID: InstanceIdSchema.optional(),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
    /** Time a client has to send a request's headers; a slower one is answered 408 and closed. */
    HEADERS_TIMEOUT_MS: z.coerce.number().int().positive().default(DEFAULT_HEADERS_TIMEOUT_MS),
    /**
     * Time a client has to send a whole request, body included (408 and closed after it). The
     * default lets a 25 MiB upload through a line of about 1.75 Mbit/s upstream.
     */
    BODY_TIMEOUT_MS: z.coerce.number().int().positive().default(DEFAULT_BODY_TIMEOUT_MS),
  })
  .extend(AuthEnvSchema.shape);

/** Environment of every process that finds the others through kv. */
export const DiscoveryEnvSchema = z.object({
  KV_URL: UrlSchema.default('http://127.0.0.1:3000'),
  /** How often a server renews its registration in kv. */
  REGISTER_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
});

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses an environment with a schema; a bad value throws a ConfigError naming the variable. */
export function parseConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): Readonly<z.output<S>> {
  // `VAR=` (as compose files and manifests often leave it) means unset, not an empty value.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = schema.safeParse(present);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`));
  }
  return Object.freeze(result.data);
}

/** For main.ts: parse or stop the process with a log line that names each bad variable. */
export function loadConfigOrExit<S extends z.ZodType>(
  service: string,
  schema: S,
  env: Record<string, string | undefined>,
): Readonly<z.output<S>> {
  try {
    return parseConfig(schema, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // Written synchronously: an asynchronous write to a pipe would be lost to the exit.
      fs.writeSync(process.stdout.fd, formatLogLine('error', service, err.message, { problems: err.problems }));
      process.exit(1);
    }
    throw err;
  }
}
