// The platform pieces the on-demand chunks (events/delivery/, live/) work with, handed to them by
// their loaders instead of imported. A chunk that imports a module the up-front code also uses
// makes a bundler that splits code (esbuild; our own rollup build of dist/ did the same) move
// that module into a shared chunk, which the page must then fetch up front beside the entry: one
// more request, and gzip can no longer share its dictionary with the entry (measured on
// 2026-12-02: three chunks, 631 B more than the same code in one). Through this object the chunks
// keep only `import type` from platform/, and the pieces stay in the entry chunk, where flag sync
// uses them anyway. scripts/size.mjs fails when the esbuild up front is more than one chunk again.
import { parseEntry } from '../protocol/readers'
import { parseRetryAfter } from './backoff'
import { HoldfastError, httpError, isRetryable, toStatusError } from './errors'
import { postJson } from './request'
import { createScheduler } from './scheduler'
import { uuid } from './uuid'

/** What the on-demand chunks get of the platform: the one scheduler, the one request, the one error type, the one reader of flag entries. */
export interface PlatformKit {
  createScheduler: typeof createScheduler
  postJson: typeof postJson
  parseRetryAfter: typeof parseRetryAfter
  HoldfastError: typeof HoldfastError
  httpError: typeof httpError
  isRetryable: typeof isRetryable
  toStatusError: typeof toStatusError
  uuid: typeof uuid
  parseEntry: typeof parseEntry
}

/** The kit the loaders pass on (a plain object: nothing runs when this module is imported). */
export const platformKit: PlatformKit = { createScheduler, postJson, parseRetryAfter, HoldfastError, httpError, isRetryable, toStatusError, uuid, parseEntry }
