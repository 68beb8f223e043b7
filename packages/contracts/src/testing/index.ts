// Test tooling, apart from the runtime modules: import it from '@pixelmill/contracts/testing' in
// tests only.
export * from './crafted-images';
export * from './route-table';
