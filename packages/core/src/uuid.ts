// Transitional re-export for the event pipeline's imports; the code is in platform/uuid.ts.
export { uuid } from './platform/uuid'
