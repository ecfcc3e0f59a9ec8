// Transitional re-export for the event pipeline's imports; the code is in protocol/readers.ts.
export { isStoredEvent } from './protocol/readers'
