import { z } from 'zod';
import { PortSchema, ServerEnvSchema } from '@pixelmill/kit';

export const KvConfigSchema = ServerEnvSchema.extend({
  PORT: PortSchema.default(3000),
  /** Folder of the SQLite database. */
  DATA_DIR: z.string().min(1).default('./data/kv'),
});
export type KvConfig = z.output<typeof KvConfigSchema>;
