// The forwarder's waits: a backoff, a pause after a refusal, or, with nothing to send, until the
// spool appends; and the stop that ends any of them.
import type { ForwarderClock } from './forwarderClock'

/** What {@link createForwarderPause} returns. */
export interface ForwarderPause {
  /** Waits `ms` on the clock, or with no `ms` until {@link ForwarderPause.wake}; {@link ForwarderPause.stop} ends either. */
  pause(ms?: number): Promise<void>
  /** The spool appended: ends a wait with no `ms` (not a backoff). */
  wake(): void
  /** Ends the wait under way, if any (the forwarder is stopping). */
  stop(): void
}

/** Creates the waits of one forwarder on `clock`. */
export function createForwarderPause(clock: ForwarderClock): ForwarderPause {
  let wake: (() => void) | undefined
  const pause = (ms?: number) =>
    new Promise<void>((resolve) => {
      const handle = ms === undefined ? undefined : clock.setTimeout(() => done(), ms)
      const done = () => {
        if (handle !== undefined) clock.clearTimeout(handle)
        wake = undefined
        resolve()
      }
      wake = ms === undefined ? done : () => {} // during a backoff, new events do not cut it short
      stopWaiter = done
    })
  let stopWaiter: (() => void) | undefined
  return { pause, wake: () => wake?.(), stop: () => stopWaiter?.() }
}
