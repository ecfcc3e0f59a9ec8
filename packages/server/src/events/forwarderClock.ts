// The forwarder's timers and clocks: a steady one for ages, the system clock for times shown.
import { realClock as steadyClock } from './sink'

/** Timers and time, injectable so a ten-minute outage can be tested without waiting ten minutes. */
export interface ForwarderClock {
  /** Epoch ms for ages (the spool's oldest): default one that does not step with the system clock. */
  now(): number
  /**
   * Epoch ms of the system clock, for times an operator reads beside the logs (`lastSuccessAt`,
   * `lastError.at`, a dead letter's `deadLetteredAt`) and for an HTTP-date `Retry-After`.
   * Default `Date.now`; an injected clock without it uses its `now`.
   */
  wall?(): number
  /** Calls `callback` after `ms` milliseconds (retries, backoff); returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown
  /** Cancels a timer `setTimeout` returned; an unknown or fired handle is ignored. */
  clearTimeout(handle: unknown): void
}

// Timeline `now` guards against: the system clock is stepped two hours forward; on Date.now the
// events spooled a moment before were two hours old at once (an oldest-age alert fired for
// nothing), and stepped back an hour, every age read 0 for that hour while the backlog grew.
//
// Times shown are the system clock's (`wall`), not this one: the steady clock keeps whatever the
// system clock read at start, so a relay started before NTP synced (two hours behind) showed
// lastSuccessAt and wrote deadLetteredAt two hours off the logs and the flags status for as long
// as it ran.
/** The default {@link ForwarderClock}: the global timers, `now` steady, `wall` the system clock. */
export const defaultForwarderClock: ForwarderClock = {
  now: () => steadyClock.now(),
  wall: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}
