import { z } from 'zod';
import { DiscoveryEnvSchema, PortSchema, ServerEnvSchema, UrlSchema } from '@pixelmill/kit';

export const MasterConfigSchema = ServerEnvSchema.extend(DiscoveryEnvSchema.shape).extend({
  PORT: PortSchema.default(3003),
  /** Fixed addresses that win over discovery through kv. */
  TASKDB_URL: UrlSchema.optional(),
  STORAGE_URL: UrlSchema.optional(),
  /** Address of storage in the signed URLs handed to workers, when they reach it by another name. */
  STORAGE_PUBLIC_URL: UrlSchema.optional(),
  /** How long the signed storage URLs of a claimed task stay valid. */
  SIGNED_URL_TTL_MS: z.coerce.number().int().min(1000).default(300_000),
  /** Largest image accepted from the frontend. */
  MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(25 * 1024 * 1024),
  /**
   * The workers' MAX_IMAGE_PIXELS: a GIF result may hold as many frames as fit in it (each a
   * whole picture), which bounds its bytes.
   */
  MAX_IMAGE_PIXELS: z.coerce.number().int().min(1).default(50_000_000),
  /** How long a claimed task belongs to its worker unless it sends a heartbeat. */
  LEASE_MS: z.coerce.number().int().min(1000).default(30_000),
  /**
   * While a getWork or isReady waits, how often it also asks taskdb: for tasks back from an expired
   * lease or a retry's backoff (no event tells of those), and as the backstop when taskdb's events are lost.
   */
  CLAIM_RECHECK_MS: z.coerce.number().int().min(10).default(1_000),
  /** How long an ended task's result and record are kept (hours, fractions allowed); afterwards 410. */
  RETENTION_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 3650)
    .default(7 * 24),
  /** How often master deletes sources of ended tasks and expired tasks' files, in bounded batches. */
  HOUSEKEEPING_INTERVAL_MS: z.coerce.number().int().min(100).default(10_000),
  /** Most bytes each API key may have stored (sources until their task ends, results until they expire); 0: no cap. */
  QUOTA_BYTES_PER_KEY: z.coerce
    .number()
    .int()
    .min(0)
    .default(2 * 1024 ** 3),
  /** The same for the clients without an API key, all together; 0: no cap. */
  QUOTA_BYTES_ANONYMOUS: z.coerce
    .number()
    .int()
    .min(0)
    .default(2 * 1024 ** 3),
});
export type MasterConfig = z.output<typeof MasterConfigSchema>;
