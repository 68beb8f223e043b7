import { ConfigError, parseConfig } from '@pixelmill/kit';
import { StorageConfigSchema } from '../../src/config';

const parse = (env: Record<string, string>) => parseConfig(StorageConfigSchema, env);

describe('storage settings', () => {
  it('when S3_BUCKET is unset, then the objects stay in the folder and no S3 setting is asked for', () => {
    expect(parse({})).toMatchObject({ DATA_DIR: './data/storage', S3_REGION: 'us-east-1', S3_CREATE_BUCKET: false });
    expect(parse({}).S3_BUCKET).toBeUndefined();
  });

  it('when the S3 settings are given, then they are taken as they are', () => {
    expect(
      parse({
        S3_BUCKET: 'images',
        S3_ENDPOINT: 'http://127.0.0.1:9000',
        S3_REGION: 'eu-west-3',
        S3_CREATE_BUCKET: 'true',
        AWS_ACCESS_KEY_ID: 'key',
        AWS_SECRET_ACCESS_KEY: 'secret',
      }),
    ).toMatchObject({ S3_BUCKET: 'images', S3_ENDPOINT: 'http://127.0.0.1:9000', S3_REGION: 'eu-west-3', S3_CREATE_BUCKET: true });
  });

  it.each([
    ['a bucket name too short', { S3_BUCKET: 'ab' }, /^S3_BUCKET: /],
    ['an endpoint that is no URL', { S3_BUCKET: 'images', S3_ENDPOINT: 'minio:9000' }, /^S3_ENDPOINT: /],
    ['S3_CREATE_BUCKET neither true nor false', { S3_CREATE_BUCKET: 'yes' }, /^S3_CREATE_BUCKET: /],
    ['an access key without its secret', { AWS_ACCESS_KEY_ID: 'key' }, /^AWS_SECRET_ACCESS_KEY: .*set both or neither/],
    ['a secret without its access key', { AWS_SECRET_ACCESS_KEY: 'secret' }, /^AWS_SECRET_ACCESS_KEY: .*set both or neither/],
  ])('when there is %s, then the settings are refused, naming it', (_name, env, problem) => {
    let refused: unknown;
    try {
      parse(env);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).problems).toEqual([expect.stringMatching(problem)]);
  });
});
