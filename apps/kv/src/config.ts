import { z } from 'zod';
import { PortSchema, ServerEnvSchema } from '@pixelmill/kit';
import { DatabaseEnvSchema } from '@pixelmill/kit/postgres';

export const KvConfigSchema = ServerEnvSchema.extend(DatabaseEnvSchema.shape).extend({
  PORT: PortSchema.default(3000),
  /** Folder of the SQLite database, used when DATABASE_URL is unset. */
  DATA_DIR: z.string().min(1).default('./data/kv'),
});
export type KvConfig = z.output<typeof KvConfigSchema>;
