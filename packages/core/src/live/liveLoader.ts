// Up front, and small: the live-update code (stream reader, parser, tabs, even the reading of
// `eventStreams`) is a chunk loaded on demand, like the event pipeline, the first time a bulk
// answer advertises event streams. A page whose server advertises none never downloads it.
import type { OkResult } from '../flags/sync'
import type { LiveOptions } from '../types'
import type { LiveUpdates, LiveUpdatesDeps } from './liveUpdates'

/** What the loader passes on to the chunk (everything but the stream, known later). */
export type LiveLoaderDeps = Omit<LiveUpdatesDeps, 'stream'> & { options: LiveOptions }

/** The up-front half of live updates of one client. */
export interface LiveLoader {
  /** Every full answer of the client's own requests; the first that advertises streams loads the chunk. */
  answered(result: OkResult, contextHash: string): void
  close(): void
}

/**
 * Whether live updates run for `liveUpdates`: `false` never; `true` or an options object always
 * (Node programs opt in this way); absent (the default) in a browser page only — a client made
 * in Node or during server rendering opens no stream unless asked.
 */
export function liveWanted(option: boolean | LiveOptions | undefined): LiveOptions | undefined {
  if (option === undefined ? typeof document === 'undefined' : !option) return undefined
  return option === true || option === undefined ? {} : (option as LiveOptions)
}

/** Creates the loader; nothing is loaded until an answer advertises event streams. */
export function createLiveLoader(deps: LiveLoaderDeps): LiveLoader {
  let live: LiveUpdates | undefined
  let loading = false
  let closed = false
  return {
    answered(result, hash) {
      if (live) return live.answered(result, hash)
      if (loading || closed || !result.streams) return
      loading = true
      import('./liveUpdates').then(
        (chunk) => {
          // undefined when no advertised stream is usable: the next answer tries again.
          live = closed ? undefined : chunk.startLiveUpdates(deps, result, hash)
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
