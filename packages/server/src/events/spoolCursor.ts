// Where the spool's forwarder is (the cursor, saved as `cursor.json`) and what one read returns.
import type { ReceivedEvent } from './schema'

/** Where the next undelivered line starts. */
export interface SpoolCursor {
  segment: number
  offset: number
}

/** A run of spooled events, read from the cursor. */
export interface SpoolBatch {
  events: ReceivedEvent[]
  /** The cursor just past these events (and past any unreadable line skipped on the way). */
  next: SpoolCursor
  /** Lines that could not be read back and were skipped. */
  skipped: number
}
