// What the events pipeline (pipeline.ts) sets on the spool of --events-upstream.
import type { ServerLogger } from '../logger'
import type { EventFileSystem } from './fileSystem'

/** Default {@link SpoolOptions.segmentBytes}: 8 MiB. */
export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024

/** Options of {@link createSpool}. */
export interface SpoolOptions {
  /** The spool directory (created). Required. */
  dir: string
  /** Segment size cap. Default {@link DEFAULT_SEGMENT_BYTES}. */
  segmentBytes?: number
  /** Default {@link nodeFileSystem}. */
  fs?: EventFileSystem
  /**
   * The clock (epoch ms) stamped on each spooled event (`at`, kept across restarts) and on
   * `cursorUnsaved.since`: the system clock's. Default `Date.now`.
   */
  now?: () => number
  /**
   * The clock of `oldestAt()`, read against the forwarder's `now` for the oldest age. Default the
   * sink's `realClock` (does not step with the system clock); `now` when only `now` is given.
   */
  steady?: () => number
  onSync?: (seconds: number, bytes: number) => void
  /** The clock (epoch ms) of `busy()`. Default `Date.now`. */
  busyNow?: () => number
  log: ServerLogger
}
