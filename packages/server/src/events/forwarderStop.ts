// The forwarder's stop with a batch out: the sink's answer is waited for a short while, so a 2xx
// that comes in is acked (its events are not sent again after a restart), then the upload is cut.
import type { ServerLogger } from '../logger'
import type { PostResult } from './batchPoster'

/**
 * How long a stop waits for the sink's answer to the batch in flight before aborting it: under the
 * events pipeline's close bound (CLOSE_WAIT_MS, 5 s), so the ack and the spool's close still fit in it.
 */
export const STOP_WAIT_MS = 2000

/** A batch posted and not yet answered: its size, and the post (it never rejects). */
export interface InFlight {
  events: number
  answered: Promise<PostResult>
}

/**
 * Waits up to `waitMs` for `inFlight` to be answered, then `abort()`s it and says at warn how many
 * events stay in the spool to be sent again (the sink may have them already).
 */
export async function waitOrAbort(inFlight: InFlight | undefined, abort: () => void, log: ServerLogger, waitMs = STOP_WAIT_MS): Promise<void> {
  if (!inFlight) return
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), waitMs)
    timer.unref?.()
  })
  const answered = await Promise.race([inFlight.answered.then(() => true), bound])
  clearTimeout(timer)
  if (answered) return
  abort()
  log.warn(`events forwarding: stopped with a batch of ${inFlight.events} event(s) the sink had not answered within ${waitMs / 1000} s; they stay in the spool and are sent again at the next start (the sink may get them twice)`)
}
