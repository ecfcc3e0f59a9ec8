// @holdfast/openfeature: an OpenFeature web provider backed by a Holdfast client. Every public
// name is listed here.
export { HoldfastWebProvider } from './provider'
export type { HoldfastProviderOptions, HoldfastClientProviderOptions } from './provider'
