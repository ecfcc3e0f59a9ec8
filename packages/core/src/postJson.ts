// Transitional re-export for the event pipeline's imports; the code is in platform/request.ts.
export { postJson } from './platform/request'
export type { PostJsonOptions, PostOutcome } from './platform/request'
