// Up front, and small: the live-update code (stream reader, parser, tabs, even the reading of
// `eventStreams`) is a chunk loaded on demand, like the event pipeline, the first time a bulk
// answer advertises event streams (or a 304 comes, whose empty body cannot say). A page whose
// server answers 200 without streams never downloads it.
// The chunk gets the platform in `kit`, added here, and imports only types (platform/kit.ts says why).
import { platformKit } from '../platform/kit'
import type { FetchResult } from '../protocol/fetchFlags'
import type { LiveOptions } from '../types'
import type { LiveUpdates, LiveUpdatesDeps } from './liveUpdates'

/** What the loader passes on to the chunk (everything but the stream, known later). */
export type LiveLoaderDeps = Omit<LiveUpdatesDeps, 'stream' | 'kit'>

/** The up-front half of live updates of one client. */
export interface LiveLoader {
  /**
   * Every answer of the client's own requests. The first that advertises streams loads the chunk;
   * so does a 304 (which carries no body: the chunk remembers what the last 200 advertised).
   */
  answered(result: FetchResult, contextHash: string): void
  close(): void
}

/**
 * Whether live updates run for `liveUpdates`: `false` never; absent (the default, CONTRACT §10),
 * `true` or an options object always, in Node too (a Node program then holds a stream open until
 * `close()`, as streaming server SDKs do). Server rendering starts no client, so it opens none.
 */
export function liveWanted(option: boolean | LiveOptions | undefined): LiveOptions | undefined {
  if (option === false) return undefined
  return typeof option == 'object' ? option : {}
}

/** Creates the loader; nothing is loaded until an answer advertises event streams. */
export function createLiveLoader(deps: LiveLoaderDeps): LiveLoader {
  let live: LiveUpdates | undefined
  let loading = false
  let closed = false
  /** A 200 came, and its `eventStreams`: after a 200 without them, a 304 needs no chunk either. */
  let seen = false
  let advertised: unknown
  return {
    answered(result, hash) {
      if (live) return live.answered(result, hash)
      if (result.kind === 'ok') {
        seen = true
        advertised = result.streams
      }
      if (loading || closed || (seen && !advertised)) return
      loading = true
      import('./liveUpdates').then(
        (chunk) => {
          // undefined when no advertised stream is usable: the next answer tries again.
          live = closed ? undefined : chunk.startLiveUpdates({ ...deps, kit: platformKit }, result, hash)
          loading = false
        },
        // Offline, or a deploy removed the chunk: the next answer tries again; polling and focus still work.
        () => (loading = false),
      )
    },
    close() {
      closed = true
      live?.close()
    },
  }
}
