// Transitional re-export for the event pipeline's imports; the code is in platform/errors.ts.
export { HoldfastError, httpError, isRetryable, toStatusError } from './platform/errors'
