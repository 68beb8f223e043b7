// Test and launcher tooling (`@pixelmill/kit/testing`): starting built services as processes
// and waiting for them, reading the OpenAPI document a service ships and serves and its metrics, a schema per test
// run, and a TCP relay that takes a shared server away from one test. No deployed service loads it.
export * from './process';
export * from './metrics';
export * from './openapi';
export * from './postgres';
export * from './tcp-proxy';
export * from './two-part-post';
