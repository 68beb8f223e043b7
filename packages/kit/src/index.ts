export * from './config';
export * from './contract-router';
export * from './discovery';
export * from './errors';
export * from './http-client';
export * from './logger';
export * from './request-context';
export * from './server';
