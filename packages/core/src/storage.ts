// Transitional re-export for the event pipeline's imports; the code is in platform/storage.ts.
export { createSafeStorage, createMemoryStorage } from './platform/storage'
export type { SafeStorage } from './platform/storage'
