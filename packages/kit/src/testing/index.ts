// Test and launcher tooling (`@pixelmill/kit/testing`): starting built services as processes
// and waiting for them. No deployed service loads it.
export * from './process';
