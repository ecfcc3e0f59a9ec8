// How an event is keyed in storage: `holdfast:event:<tick 15 digits>:<seq 9 digits>:<id>`, so a key
// listing sorted as strings is in the order the events were logged.
//
// The tick is a hybrid logical clock, not the wall clock: it is the clock's time, but never less
// than the last tick handed out or seen in storage. A clock set back (NTP, a user, a VM resume)
// therefore cannot make newer events sort before older ones, and `maxQueued` drops the oldest by
// the order they were logged:
//
//   clock   10:00 ──── 09:00 (set back an hour)
//   logged  a    b     c
//   tick    10:00/0    10:00/1   10:00/2   (not 09:00, which would sort c before a)
//
// Keys of earlier pages raise the tick when the queue is listed (delivery/storeReader.ts), so this
// page's events sort after theirs even when that page's clock ran ahead.

const MAX_TICK = 999_999_999_999_999

/** Every stored event's key starts with this. */
export const EVENT_PREFIX = 'holdfast:event:'

/** The position of the last key handed out or seen: a tick (ms) and a sequence within it. */
export interface KeyClock {
  tick: number
  seq: number
}

/** The key of the event `id` logged now, on `clock` (advanced); `now` is the injected clock's time. */
export function nextEventKey(clock: KeyClock, now: number, id: string): string {
  // 15 digits reach the year 33658; a clock reading beyond (or NaN, or negative) must not make a
  // longer or shorter key that sorts out of order.
  const t = Math.max(Number.isFinite(now) && now > 0 ? Math.min(MAX_TICK, Math.floor(now)) : 0, clock.tick)
  clock.seq = t === clock.tick ? clock.seq + 1 : 0
  clock.tick = t
  return `${EVENT_PREFIX}${pad(t, 15)}:${pad(clock.seq, 9)}:${id}`
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0')
}
