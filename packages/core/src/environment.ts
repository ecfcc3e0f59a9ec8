// Transitional re-export for the event pipeline's imports; the code is in platform/environment.ts.
export { isOffline, watchEnvironment } from './platform/environment'
