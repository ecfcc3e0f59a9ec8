// Proxy mode's `--snapshot`: what stands in for an upstream that is down, for a context with
// nothing held, or in place of a held answer older than the snapshot (CONTRACT §9), never for a
// context an upstream 401/403 dropped after the snapshot was taken.
import type { EvaluationContext } from '@openfeature/core'
import type { HeldContext } from './contextCache'
import type { ForwardedAnswer } from './flagSource'
import { answerFromHeld, answerFromSnapshot, snapshotFetchedAt, snapshotServes } from './proxyAnswer'
import type { SnapshotState } from './snapshotFile'
import type { ProxySnapshot } from './upstreamStart'

/** The `--snapshot` of one proxy source. */
export interface SnapshotStandIn {
  /** Takes the snapshot read at `open` (see loadProxySnapshot). */
  load(read: ProxySnapshot): void
  /** Whether a snapshot was loaded (usable). */
  present(): boolean
  /** Whether it serves every context (definitions; a Bootstrap serves its own user only). */
  servesAll(): boolean
  /** Whether it could be used at start (none without a path). */
  state(): SnapshotState | undefined
  /** false when the file was read but holds no flags or can be served to nobody (see ProxySnapshot). */
  refusesStart(): boolean
  /** The snapshot's answer for a context with nothing held: undefined when it has none for it. */
  answer(key: string, context: EvaluationContext, forwarded: Record<string, string>): ForwardedAnswer | undefined
  /** When the snapshot served in place of `held` was taken (epoch ms): undefined when `held` is served. */
  over(key: string, held: HeldContext, request?: HeldContext['request']): number | undefined
  /** The answer for a context holding `held`: it (stale or not), or the newer snapshot's; `refused` credentials never get the snapshot. */
  served(key: string, held: HeldContext, stale: boolean, context: EvaluationContext, forwarded: Record<string, string>, refused?: boolean): ForwardedAnswer
}

/** Creates the stand-in; `clearedAt` says when an upstream 401/403 dropped a context (epoch ms). */
export function createSnapshotStandIn(clearedAt: (key: string) => number | undefined): SnapshotStandIn {
  let read: ProxySnapshot = { refusesStart: true }
  const heldAnswer = (held: HeldContext, stale: boolean) => {
    const answer = answerFromHeld(held, stale)
    // In memory only, on the entry itself: the next upstream answer replaces it (see `recovered`).
    if ((answer.body as { metadata: { holdfast: { stale: boolean } } }).metadata.holdfast.stale) held.servedStale = true
    return answer
  }
  // When the --snapshot's answer for this context was taken, when it has one (definitions: every
  // context; a Bootstrap: its own user, known once they asked) that may be served: none to a context
  // an upstream 401/403 dropped no earlier than that (see `clearedAt` in upstreamDrops.ts).
  const takenFor = (key: string, request: HeldContext['request']): number | undefined => {
    const snapshot = read.layer
    if (!snapshot) return undefined
    const serves = snapshot.kind === 'bootstrap' ? request !== undefined && snapshotServes(snapshot, read.core, request.context, request.forwarded) : read.core?.ok === true
    if (!serves) return undefined
    const takenAt = snapshotFetchedAt(snapshot)
    const cleared = clearedAt(key)
    return cleared !== undefined && cleared >= takenAt ? undefined : takenAt
  }
  // CONTRACT §9: at a start the newest valid of data dir and snapshot is served. A held answer that
  // may predate this start, not answered here since (read back from the data dir, or with --redis
  // another relay's taken from the store), loses to a --snapshot made after it (a build deployed
  // over an old volume): before, the older data-dir answer was served for the whole outage, and a
  // relay started in an outage served the newer snapshot until it had read the store, then the
  // store's older answer (a user saw 7, then the 1 of before the build). On a tie, or a saved answer
  // dated ahead of this clock (its time orders nothing), the held answer wins, as the data dir does
  // with --flags-url (urlLayers.ts). `over` says when that snapshot was taken, for the answer
  // and for the status (which named the data dir and its older time while every user got the snapshot).
  const over = (key: string, held: HeldContext, request = held.request): number | undefined => {
    if ((held.source !== 'data-dir' && !held.taken) || held.clockAhead) return undefined
    const takenAt = takenFor(key, request)
    return takenAt !== undefined && takenAt > held.fetchedAt ? takenAt : undefined
  }
  return {
    load: (snapshot) => (read = snapshot),
    present: () => read.layer !== undefined,
    servesAll: () => read.layer !== undefined && read.layer.kind !== 'bootstrap',
    state: () => read.state,
    refusesStart: () => read.refusesStart,
    answer: (key, context, forwarded) => (takenFor(key, { context, forwarded }) === undefined ? undefined : answerFromSnapshot(read.layer!, read.core, context, forwarded)),
    over,
    // Not for credentials the upstream refuses: the snapshot stands in for an upstream that is down,
    // not for one that refuses them (see `refusedHere` in proxyEvaluate.ts).
    served(key, held, stale, context, forwarded, refused = false) {
      if (!refused && over(key, held, { context, forwarded }) !== undefined) {
        // The upstream's next answer is news for the tabs told this, as for a stale held answer.
        held.servedStale = true
        return answerFromSnapshot(read.layer!, read.core, context, forwarded)!
      }
      return heldAnswer(held, stale)
    },
  }
}
