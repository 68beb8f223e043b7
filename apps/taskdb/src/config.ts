import { z } from 'zod';
import { DiscoveryEnvSchema, PortSchema, ServerEnvSchema } from '@pixelmill/kit';

export const TaskdbConfigSchema = ServerEnvSchema.extend(DiscoveryEnvSchema.shape).extend({
  PORT: PortSchema.default(3001),
  /** Folder of the SQLite database. */
  DATA_DIR: z.string().min(1).default('./data/taskdb'),
  /** Claims a task may have before an expired lease ends it as failed. */
  MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),
});
export type TaskdbConfig = z.output<typeof TaskdbConfigSchema>;
