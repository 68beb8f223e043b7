import { z } from 'zod';
import { DiscoveryEnvSchema, PortSchema, ServerEnvSchema } from '@pixelmill/kit';

export const StorageConfigSchema = ServerEnvSchema.extend(DiscoveryEnvSchema.shape).extend({
  PORT: PortSchema.default(3002),
  /** Root of the `inProgress/` and `finished/` folders. */
  DATA_DIR: z.string().min(1).default('./data/storage'),
  /** Largest object accepted; results can be larger than uploads, so this is above the upload limit. */
  MAX_OBJECT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
});
export type StorageConfig = z.output<typeof StorageConfigSchema>;
