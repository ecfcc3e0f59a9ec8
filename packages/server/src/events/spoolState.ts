// What the spool's parts (spool.ts, spoolRecovery.ts) read and write of one spool: its cursor,
// counts and active segment, one object read and written in place, never copied.
import type { SpoolCursor } from './spoolCursor'

/** The spool's positions and counts; see {@link createSpoolState}. */
export interface SpoolState {
  /** The segment appended to. */
  active: number
  /** The first line not yet delivered. */
  cursor: SpoolCursor
  /** Events spooled and not yet delivered or dropped. */
  pending: number
  /** When the oldest pending event was spooled, on the steady clock; undefined when none is. */
  oldest: number | undefined
  /** Events lost (a segment gone, a torn end) since the forwarder last took the count (`takeLost`). */
  lost: number
  /** The append log found its segment moved, deleted or cut short: the next read counts again. */
  changed: boolean
  /** Bumped by `reset`: a recount that began before it does not write its counts over it. */
  generation: number
}

/** The state of a spool before its open: segment 1, nothing pending. */
export function createSpoolState(): SpoolState {
  return { active: 1, cursor: { segment: 1, offset: 0 }, pending: 0, oldest: undefined, lost: 0, changed: false, generation: 0 }
}
