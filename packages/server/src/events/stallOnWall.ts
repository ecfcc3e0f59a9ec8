// A store stall as the status shows it: `since` on the system clock, worked out once per stall.
import type { SinkClock } from './sink'
import type { StoreStall } from './storeStall'

/**
 * A stall as the status shows it: `since` by the system clock. The steady clock times it (and
 * tells one stall from the next), but it is the clock at the process's start counted on: a server
 * started before NTP set the system clock showed `since` hours off the logs.
 *
 * Worked out once per stall (the steady `since` tells one from the next), then kept: worked out
 * at each read, an NTP step during the stall moved `since` by the step on the next read, and
 * Date.now and the steady clock, not read at once, put it a millisecond off now and then: one
 * stall seen as another, by the status, /readyz and an alert alike.
 *
 * Returns the converter of one stall source (the events store's writes, or the forwarder's reads):
 * each keeps its own.
 */
export function stallOnWall(clock: SinkClock): (stall: StoreStall | undefined) => StoreStall | undefined {
  let seen: { steady: number; wall: number } | undefined
  return (stall: StoreStall | undefined): StoreStall | undefined => {
    if (!stall) return (seen = undefined)
    if (seen?.steady !== stall.since) seen = { steady: stall.since, wall: Math.round(Date.now() - (clock.now() - stall.since)) }
    return { ...stall, since: seen.wall }
  }
}
