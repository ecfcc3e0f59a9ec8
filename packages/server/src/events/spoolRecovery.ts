// The spool's answer to a segment deleted, moved or cut short from outside the relay (an
// operator's `rm`, a restore): the cursor moves past what is gone, what is left is counted again,
// and the difference is counted lost and said. spool.ts calls it from a read.
import type { ServerLogger } from '../logger'
import type { AppendLog } from './appendLog'
import { READ_WINDOW, segmentName, type createSegmentReader } from './segmentReader'
import { readSpoolLine } from './spoolLine'
import type { SpoolState } from './spoolState'

/** Options of {@link createSpoolRecovery}: the spool's state and parts, the same instances it uses. */
export interface SpoolRecoveryOptions {
  state: SpoolState
  /** The spool's append log (made at its open). */
  appendLog: () => AppendLog
  /** Bytes of `segment` known durable; undefined when it is not there. */
  durableSize(segment: number): Promise<number | undefined>
  /** Segments found missing and accounted for (added to here). */
  gone: Set<number>
  /** Sizes of the segments no longer appended to, as counted. */
  sealed: Map<number, number>
  reader: Pick<ReturnType<typeof createSegmentReader>, 'readLines' | 'countLines'>
  /** A stamp read back (system clock) moved onto the steady clock. */
  fromStamp(at: number | undefined): number | undefined
  log: ServerLogger
}

/**
 * The recovery of one spool (see the file comment), as a function a read awaits.
 *
 * Timeline this guards against: an operator runs `rm seg-…3.jsonl` (or moves it away) under a
 * running relay. The append log wrote on into the deleted inode, so every event answered 202
 * after it was gone at the next restart, and each read met ENOENT: the forwarder backed off and
 * retried for ever, with `pending` still counting the lost events. Now the append log goes on in
 * a new segment (followPath 'rotate'), and here, between appends, the cursor moves past the
 * missing segments and what is left is counted again: the difference was lost, and is said so.
 *
 * Only finding what changed holds the append log (a few stats); the count of what is left, a
 * read of the whole spool, runs beside the appends, up to where the log ended when it was
 * looked at: what is appended meanwhile is counted by `append` as ever. Before, the count held
 * the append log: after a long outage (a large spool) every events request waited behind it and
 * was answered 503 STORE_STALLED, the relay refusing events while nothing was hung. The
 * forwarder (the only reader: nothing acks meanwhile) waits for it.
 */
export function createSpoolRecovery({ state, appendLog: logOf, durableSize, gone, sealed, reader: { readLines, countLines }, fromStamp, log }: SpoolRecoveryOptions): () => Promise<void> {
  return async () => {
    const appendLog = logOf()
    const found = await appendLog.exclusive(async () => {
      // (follow() itself may set `changed`: this recount covers it.)
      const movedOn = (await appendLog.follow()) || state.changed
      state.changed = false
      let from = state.cursor
      const missing: number[] = []
      const shrunk: number[] = []
      for (let segment = state.cursor.segment; segment <= state.active; segment++) {
        const size = await durableSize(segment)
        if (size !== undefined && segment < state.active && size < (sealed.get(segment) ?? 0)) shrunk.push(segment)
        if (size !== undefined || gone.has(segment)) continue
        missing.push(segment)
        gone.add(segment)
        if (segment === from.segment && segment < state.active) from = { segment: segment + 1, offset: 0 }
      }
      if (!movedOn && missing.length === 0 && shrunk.length === 0) return undefined
      // A cursor inside what was cut off: that segment is done (the cut lines are counted lost).
      if (shrunk.includes(from.segment) && from.offset > ((await durableSize(from.segment)) ?? 0)) from = { segment: from.segment + 1, offset: 0 }
      // After an await: every append fsynced by now has been counted into `pending`.
      return { from, end: { segment: state.active, offset: appendLog.size() }, pendingThen: state.pending, generation: state.generation, missing, shrunk }
    })
    if (!found) return
    const { from, end, pendingThen, missing, shrunk } = found
    let left: Awaited<ReturnType<typeof countLines>>
    try {
      left = await countLines(from, end)
    } catch (error) {
      // Counted again at the next read (a read error here left `pending` as it was).
      state.changed = true
      throw error
    }
    if (found.generation !== state.generation) return
    // A torn end is counted lost when it is read, not here as well.
    const lostNow = Math.max(0, pendingThen - left.lines - left.torn)
    state.cursor = from
    state.pending = left.lines + (state.pending - pendingThen)
    state.lost += lostNow
    const { lines } = await readLines(state.cursor, 1, READ_WINDOW)
    state.oldest = state.pending > 0 ? fromStamp(lines[0] && readSpoolLine(lines[0].line)?.at) : undefined
    log.error(
      `events spool: ${[...missing, ...shrunk].map(segmentName).join(', ') || 'a segment'} deleted, moved or cut short from outside the relay; ` +
        `${lostNow} undelivered event(s) in it are lost (counted as dropped); delivering on from ${segmentName(state.cursor.segment)}`,
    )
  }
}
