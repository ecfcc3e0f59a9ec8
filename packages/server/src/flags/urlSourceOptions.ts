// The options of --flags-url's source (urlSource.ts), in a module of their own: its parts
// (urlServing.ts, urlPoll.ts, urlSharing.ts) read them too, and took them from urlSource.ts, which
// creates those parts: an import cycle.
import type { SharedDefinitions } from '../store/sharedDefinitions'
import type { SharedDefinitionsOptions } from '../store/sharedDefinitionsOptions'
import type { RelaySourceOptions } from './relay'

/** Options of `createUrlSource` (urlSource.ts). */
export interface UrlSourceOptions extends RelaySourceOptions {
  /** The flagd document's URL (http or https). */
  url: string
  /** Milliseconds between polls (`--poll-interval` × 1000; default there 10 s). */
  pollIntervalMs: number
  /**
   * Asked before each scheduled poll; false skips it (e.g. another relay holds the Redis lease and
   * this one takes new definitions from the store instead). Refresh is never gated. Default: always.
   */
  shouldPoll?: () => boolean
  /** Sent with every poll (e.g. a token for a private bucket). Default: none. */
  headers?: Record<string, string>
  /** Refuse documents that break flagd's JSON schema. Default in `createFlagServer`: true. */
  strict: boolean
  /**
   * `--redis`: shares the definitions with the other relays of this source. Given the hooks of this
   * source, returns the shared store's driver; only its leader polls. Default: none (polls alone).
   */
  share?: (hooks: Pick<SharedDefinitionsOptions, 'take' | 'report' | 'onRole' | 'served' | 'held' | 'published'>) => SharedDefinitions
}
