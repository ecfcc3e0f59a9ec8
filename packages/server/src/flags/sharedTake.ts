// --redis: whether this relay takes another relay's answer for a context, shared through the store.
import type { HeldContext } from './contextCache'
import type { ContextRecord } from './records'

/**
 * The verdict on a shared answer: `kept` (the same values, held here no older: nothing to take,
 * yet acknowledged), `refused` (older than what is held, by the store's order), or `take`, with
 * whether its values are the `same` as those held.
 */
export type SharedVerdict = { kind: 'kept' } | { kind: 'refused' } | { kind: 'take'; same: boolean }

/**
 * Judges `saved`, another relay's answer at the store's `version`, against `held` (what this relay
 * holds for the context, if anything); `now` is this relay's clock (epoch ms).
 */
export function judgeShared(held: HeldContext | undefined, saved: ContextRecord, version: number, now: () => number): SharedVerdict {
  // The store's order (its versions) says this answer is newer than any seen here. `fetchedAt`
  // comes from another machine's clock, which may be hours off: it only keeps the same values
  // from moving back in age, never an older value from being replaced.
  const same = held !== undefined && held.flags.size === saved.flags.length && saved.flags.every((flag) => {
    const mine = held.flags.get(flag.key)
    return mine !== undefined && JSON.stringify([mine.value, mine.variant, mine.errorCode]) === JSON.stringify([flag.value, flag.variant, flag.errorCode])
  })
  if (held && held.source === 'upstream' && same && held.fetchedAt >= saved.fetchedAt) return { kind: 'kept' }
  // What is held has a later place in the store's order than this copy (asked for after it): a
  // look-up or notice whose read came back after this relay's own newer answer went into service,
  // but before that answer was written to the store (the replica had not seen it yet). Before, the
  // copy replaced it; the newer answer was written all the same, so nothing ever took it back, and
  // through the outage that followed the relay served the older values.
  if (held?.storeVersion !== undefined && version < held.storeVersion) return { kind: 'refused' }
  // An answer read back from the data dir, got after the store's copy (while Redis could not take
  // it, before a restart): taking the copy would move this context back. The store's order
  // decides where the data dir knows it: the version the answer was asked for at (a copy asked
  // for later is newer, whatever the clocks say), or the newest seen when it was asked for
  // without one (a copy up to that one is older). Before, the times always decided: a relay whose
  // clock ran hours ahead saved answers dated in the future (clamped to the restart), which beat
  // the fleet's newer copy, and were written back over it for every relay. Only a copy newer than
  // what was seen, against an answer got without a version, is left to the times (the copy's
  // clamped to now, as everywhere), unless this one was dated ahead of the clock at the restart;
  // the upstream's next answer for the context replaces both.
  if (held && held.source === 'data-dir' && !same) {
    const order = held.storeVersion ?? held.storeSince
    if (order !== undefined && version <= order) return { kind: 'refused' }
    if (held.storeVersion === undefined && !held.clockAhead && Math.min(saved.fetchedAt, now()) <= held.fetchedAt) return { kind: 'refused' }
  }
  return { kind: 'take', same }
}
