// Test and launcher tooling (`@pixelmill/kit/testing`): starting built services as processes
// and waiting for them, and reading the OpenAPI document a service ships and serves. No deployed
// service loads it.
export * from './process';
export * from './openapi';
export * from './postgres';
