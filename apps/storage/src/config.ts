import { z } from 'zod';
import { DiscoveryEnvSchema, PortSchema, ServerEnvSchema, UrlSchema } from '@pixelmill/kit';

export const StorageConfigSchema = ServerEnvSchema.extend(DiscoveryEnvSchema.shape)
  .extend({
    PORT: PortSchema.default(3002),
    /** Root of the `inProgress/` and `finished/` folders (when S3_BUCKET is unset). */
    DATA_DIR: z.string().min(1).default('./data/storage'),
    /** Largest object accepted; results can be larger than uploads, so this is above the upload limit. */
    MAX_OBJECT_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024),
    /** Bucket of an S3-compatible store that keeps the objects; unset: the folder DATA_DIR. It must exist (see S3_CREATE_BUCKET). */
    S3_BUCKET: z.string().min(3, 'must be a bucket name (3 characters or more)').optional(),
    /** Address of the S3-compatible server (MinIO, R2, Ceph, ...); unset: AWS itself. */
    S3_ENDPOINT: UrlSchema.optional(),
    /** Region of the bucket (the signature names it; most S3-compatible servers take any). */
    S3_REGION: z.string().min(1).default('us-east-1'),
    /** Create S3_BUCKET when it is missing (at the readiness check); off: a missing bucket keeps storage not ready. */
    S3_CREATE_BUCKET: z
      .enum(['true', 'false'], { error: 'must be true or false' })
      .default('false')
      .transform((value) => value === 'true'),
    /** Access key of the bucket; unset (with the secret): the AWS SDK's default chain (shared files, instance or task role). */
    AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
    /** Secret of AWS_ACCESS_KEY_ID. */
    AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    /** Session token of temporary credentials, with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. */
    AWS_SESSION_TOKEN: z.string().min(1).optional(),
  })
  .refine((config) => (config.AWS_ACCESS_KEY_ID === undefined) === (config.AWS_SECRET_ACCESS_KEY === undefined), {
    message: 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither',
    path: ['AWS_SECRET_ACCESS_KEY'],
  });
export type StorageConfig = z.output<typeof StorageConfigSchema>;
