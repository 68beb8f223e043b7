import { describeTaskStoreConformance } from './task-store.conformance';

describeTaskStoreConformance('postgres');
