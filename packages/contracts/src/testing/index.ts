// Test tooling, apart from the runtime modules: import it from '@pixelmill/contracts/testing' in
// tests only. Plain Uint8Arrays and no Node API, like the rest of the package.
export * from './crafted-images';
export * from './route-table';
export { crc32, zlibCompress } from './bytes';
