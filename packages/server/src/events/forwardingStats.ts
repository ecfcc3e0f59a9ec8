// What the forwarder reports of itself: its state and counts, for `/holdfast/v1/status` and the metrics.
import type { DeadLetterStats } from './deadLetter'

/** What one delivery attempt came to. */
export type ForwardOutcome = 'delivered' | 'split' | 'dead_lettered' | 'dropped' | 'misconfigured' | 'retry' | 'lost'

/**
 * Refusals for good (400/422/413, the events dead-lettered or dropped) in a row, nothing delivered
 * between, after which the state says `refusing`. Two, not one: a batch holding one bad event
 * ends its search with that event refused alone and the next piece delivered.
 */
export const REFUSING_AFTER = 2

/** What the forwarder is doing, for `/holdfast/v1/status` and the metrics. */
export interface ForwardingStats {
  /**
   * `ok` after a 2xx (or before any attempt, or after a first refusal for good: the sink answered), `failing` on transient errors (also the spool's, `lastError` says, until the spool answers again: then the upstream's latest answer stands), `misconfigured` on 401/403/404/405/410;
   * `taken-over` once another server took the spool's lock over (the server's status: this one no longer forwards, and its `pending` and `oldestAgeMs` are 0, the spool being the new holder's);
   * `refusing` once the sink refused events for good (400/422/413: dead-lettered or dropped) {@link REFUSING_AFTER} times in a row with nothing delivered between (a sink whose schema or validation no longer takes what is sent): until its next 2xx.
   */
  state: 'ok' | 'failing' | 'misconfigured' | 'taken-over' | 'refusing'
  /** Events in the spool, not yet delivered. */
  pending: number
  /** Age of the oldest pending event (ms since it was spooled); 0 when none. */
  oldestAgeMs: number
  /** Events delivered (2xx) since start. */
  delivered: number
  /**
   * Events dropped since start: refused by the sink with 400/422/413 while the dead-letter file was
   * full, unreadable in the spool, or lost with a spool segment deleted or moved from outside.
   */
  dropped: number
  /** Events the sink refused for good (413, 400/422) kept in the dead-letter file, since start. */
  deadLettered: number
  /** The dead-letter file: path, bytes, bound, and `full` while it is full. */
  deadLetter?: DeadLetterStats
  /**
   * The most events sent per request now, while under the configured batch size: what a 413, or a
   * 400/422 search that ended with every piece taken, taught (doubled back after 100 deliveries in
   * a row). Absent at the batch size. Before, only one warn line said why batches were small.
   */
  batchLimit?: number
  /** Requests that failed and will be retried, since start. */
  retries: number
  /** The last delivery (2xx), epoch ms on the system clock (`ForwarderClock.wall`). */
  lastSuccessAt?: number
  /** The last failure, `at` epoch ms on the system clock (`ForwarderClock.wall`). */
  lastError?: {
    /** What the failure said (the sink's status and answer, a network error, the spool's or the dead letter's I/O error). */
    message: string
    /** The sink's HTTP status, when it answered. */
    httpStatus?: number
    /** When it failed, epoch ms on the system clock. */
    at: number
  }
  /**
   * Delivered events the spool's saved cursor does not know of (its write failed: a full disk, and
   * with only the active segment left, delivering frees nothing), since when: a crash now sends
   * them again (the sink de-duplicates). Absent while the cursor is saved.
   */
  cursorUnsaved?: {
    /** Delivered events a crash now would send again. */
    events: number
    /** When the cursor write first failed, epoch ms on the system clock. */
    since: number
  }
}
