// Transitional re-export (other branches import evaluation by this path); the code is in flags/evaluate.ts.
export { evaluate, expectedType, matchesType } from './flags/evaluate'
export type { Expected } from './flags/evaluate'
