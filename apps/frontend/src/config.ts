import { z } from 'zod';
import { DiscoveryEnvSchema, PortSchema, ServerEnvSchema, UrlSchema } from '@pixelmill/kit';

export const FrontendConfigSchema = ServerEnvSchema.extend(DiscoveryEnvSchema.shape).extend({
  PORT: PortSchema.default(8080),
  /** Largest image accepted; a larger upload is refused with 413. */
  MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(25 * 1024 * 1024),
  /** Fixed address of master (a load balancer, a service DNS name); wins over discovery through kv. */
  MASTER_URL: UrlSchema.optional(),
  /** How often the status page reloads itself (without JavaScript) until the image is done. */
  PAGE_REFRESH_SECONDS: z.coerce.number().int().min(1).max(60).default(1),
});
export type FrontendConfig = z.output<typeof FrontendConfigSchema>;
