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
  MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(25 * 1024 * 1024),
  /** How long a claimed task belongs to its worker unless it sends a heartbeat. */
  LEASE_MS: z.coerce.number().int().min(1000).default(30_000),
  /** While a getWork waits, how often it also asks taskdb (for expired leases and other masters' tasks). */
  CLAIM_RECHECK_MS: z.coerce.number().int().min(10).default(1_000),
});
export type MasterConfig = z.output<typeof MasterConfigSchema>;
