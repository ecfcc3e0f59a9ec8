// Proxy mode's news for the streams (`onReaskNews`, `onTaken`): a change found in a held context,
// whoever found it (a re-ask round, a user's own request, a canary, another relay through the
// store), told at most once a sweep per flag, and a second change at most once a round.
import { createListeners } from './flagSource'
import type { HeldContext } from './contextCache'
import { changedKeys } from './proxyAnswer'

// Not a flag key (keys are strings a flag service names; none is empty with a NUL): in `told`, a
// context served stale that is fresh again (see refreshAll in reaskRounds.ts).
const RECOVERED = '\u0000recovered'

/** What the news reads of a fresh upstream answer: the flags it changed, and whether a stale answer was served before it. */
export interface AnswerFound {
  kind: 'fresh'
  changed: string[]
  recovered?: true
}

/** The news of one proxy source. */
export interface ReaskNews {
  /** The flag keys told of since the sweep began: the re-ask rounds forget them when it starts again, and at an upstream that is down. */
  told: Set<string>
  /** Numbers an upstream answer got by this process (HeldContext.answered). */
  answered(): number
  /**
   * Tells of `outcome` (a fresh answer) for a context that held `held`. `reask`: asked by a round
   * (true), by a canary (its second change waits for the next round, as a user's request's does),
   * or for a user (false). Returns `outcome`.
   */
  tell<O extends AnswerFound>(held: HeldContext | undefined, outcome: O, reask: boolean | 'canary'): O
  /** --redis: another relay's answer `taken` replaced `held` here. */
  taken(held: HeldContext, taken: HeldContext): void
  /** Tells the news a user's request owes (a second change), as a round begins. */
  tellOwed(): void
  /** Listens to the news of a change (`onReaskNews`). */
  onNews(listener: () => void): () => void
  /** Listens to the answers taken from another relay that changed something (`onTaken`). */
  onTaken(listener: () => void): () => void
}

/** Creates the news of a proxy source. */
export function createReaskNews(): ReaskNews {
  // A re-ask round that finds a change tells the streams at once (`onReaskNews`), not when it ends:
  // with many contexts and a slow upstream a round lasts minutes to hours. `answers` numbers every
  // upstream answer this process got (held.answered), so a change found in a context answered since
  // the latest news is news again, however many keys were already told in the sweep (`told`).
  const newsListeners = createListeners<undefined>()
  const takenListeners = createListeners<undefined>()
  let answers = 0
  let newsAfter = 0
  // A second change found by a user's request, told when the next round begins (see `tell`).
  let owedNews = false
  // The flag keys told of (see `newsListeners`) since the sweep began, not only in this round: a
  // round cut at its bound forgot them, and the next one's first idle context still holding the
  // old value was news again, a notice (every open tab refetching) each round for the whole sweep.
  // Forgotten when the sweep starts again and when a round ends at an upstream that is down.
  const told = new Set<string>()

  return {
    told,
    answered: () => ++answers,
    // Tells the streams of a change found in a held context (`onReaskNews`), whoever asked: a round,
    // or a user's own request. Before, only a round's finding was news: a change first found by a
    // user's request replaced what was held, the rounds after it compared against that and found
    // nothing, and the user's other devices (streams open, asking nothing) never heard of it.
    // A context never held before is no change (a crawler of new users makes no notice). A context
    // served stale that is fresh again is news too, once a sweep (`RECOVERED`): the tabs told `stale`
    // hear nothing else, their values being the same.
    tell(held, outcome, reask) {
      if (!held) return outcome
      const found = outcome.recovered ? [...outcome.changed, RECOVERED] : outcome.changed
      const first = found.some((flag) => !told.has(flag))
      if (found.length > 0 && (first || (held.answered ?? 0) > newsAfter)) {
        // News: a flag not told of in this sweep, or a context that changed again after it was
        // answered since the latest news (a second change). The same change found again in an idle
        // context is not: the tabs that listen refetched at the first notice, and a notice per
        // context found would have every tab refetch for the whole sweep.
        for (const flag of found) told.add(flag)
        newsAfter = answers
        // A second change found by a user's request goes out with the next round, not at once: the
        // refetches a notice brings are users' requests too, and a flag the upstream draws anew at
        // each evaluation (a nonce, a timestamp) made two devices of one user, their refetches 300 ms
        // apart, each find a change in the other's answer: a notice to every open tab twice a
        // second, for good. Now at most one a round, as a round's own finding always was.
        // (A canary's too: one a second while a crashing user retries, and a nonce flag in the
        // canary's context was a notice to every tab each second.)
        if (!first && reask !== true) owedNews = true
        else newsListeners.emit(undefined)
      }
      return outcome
    },
    taken(held, taken) {
      // A change of flags already told of in this sweep goes out with the next round, as one found
      // by a user's request here (see `tell`): two devices of one user on two relays, a flag drawn
      // anew at each evaluation, each relay took the other's refetch as news, and the two relays
      // notified each other's tabs in a loop, a notice every few hundred ms on each.
      const found = changedKeys(held.flags, taken.flags)
      if (found.length === 0 || found.some((flag) => !told.has(flag))) {
        for (const flag of found) told.add(flag)
        takenListeners.emit(undefined)
      } else owedNews = true
    },
    tellOwed() {
      if (owedNews) {
        owedNews = false
        newsListeners.emit(undefined)
      }
    },
    onNews: (listener) => newsListeners.add(listener),
    onTaken: (listener) => takenListeners.add(listener),
  }
}
