import type { StorageConfig } from '../config';
import { FileStore } from './file-store';
import type { ObjectStore } from './object-store';
import { createS3Client, S3ObjectStore } from './s3-object-store';

export type ObjectStoreConfig = Pick<
  StorageConfig,
  | 'DATA_DIR'
  | 'S3_BUCKET'
  | 'S3_ENDPOINT'
  | 'S3_REGION'
  | 'S3_CREATE_BUCKET'
  | 'AWS_ACCESS_KEY_ID'
  | 'AWS_SECRET_ACCESS_KEY'
  | 'AWS_SESSION_TOKEN'
  | 'REQUEST_TIMEOUT_MS'
>;

/**
 * The store the settings name: the bucket S3_BUCKET when set, else the folder DATA_DIR. From a
 * script: `openObjectStore(StorageConfigSchema.parse({ S3_BUCKET: 'b', S3_ENDPOINT: url, ... }))`.
 */
export function openObjectStore(config: ObjectStoreConfig): ObjectStore {
  if (config.S3_BUCKET === undefined) return new FileStore(config.DATA_DIR);
  const credentials =
    config.AWS_ACCESS_KEY_ID !== undefined && config.AWS_SECRET_ACCESS_KEY !== undefined
      ? {
          accessKeyId: config.AWS_ACCESS_KEY_ID,
          secretAccessKey: config.AWS_SECRET_ACCESS_KEY,
          ...(config.AWS_SESSION_TOKEN ? { sessionToken: config.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  const client = createS3Client({
    endpoint: config.S3_ENDPOINT,
    region: config.S3_REGION,
    credentials,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
  });
  return new S3ObjectStore({ client, bucket: config.S3_BUCKET, createBucket: config.S3_CREATE_BUCKET });
}
