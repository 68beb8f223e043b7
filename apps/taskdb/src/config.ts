import { z } from 'zod';
import { DiscoveryEnvSchema, PortSchema, ServerEnvSchema } from '@pixelmill/kit';
import { DatabaseEnvSchema } from '@pixelmill/kit/postgres';

/** With DATABASE_URL the tasks live in PostgreSQL, shared by several instances; without it, in SQLite under DATA_DIR. */
const StoreEnvSchema = ServerEnvSchema.extend(DiscoveryEnvSchema.shape).extend(DatabaseEnvSchema.shape);

export const TaskdbConfigSchema = StoreEnvSchema.extend({
  PORT: PortSchema.default(3001),
  /** Folder of the SQLite database (when DATABASE_URL is unset). */
  DATA_DIR: z.string().min(1).default('./data/taskdb'),
  /** FULL: every commit survives a power loss; NORMAL: survives a killed process, one fsync less per commit. */
  SQLITE_SYNCHRONOUS: z.enum(['FULL', 'NORMAL']).default('FULL'),
  /** Attempts (claims) a task may have; when the last one ends without a result the task fails. */
  MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),
  /** Hard limit of one attempt, however often its lease is extended. */
  ATTEMPT_TIMEOUT_MS: z.coerce.number().int().min(1000).default(120_000),
  /** Pause before the first retry; doubles per attempt up to RETRY_MAX_MS, with jitter. */
  RETRY_BASE_MS: z.coerce.number().int().min(0).default(1_000),
  RETRY_MAX_MS: z.coerce.number().int().min(0).default(30_000),
  /** How often expired leases are given back to the queue. */
  REAP_INTERVAL_MS: z.coerce.number().int().min(100).default(1_000),
});
export type TaskdbConfig = z.output<typeof TaskdbConfigSchema>;
