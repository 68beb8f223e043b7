export * from './route';
export * from './common';
export * from './image-type';
export * from './kv';
export * from './taskdb';
export * from './storage';
export * from './master';
export * from './frontend';
