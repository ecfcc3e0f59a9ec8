// Proxy mode with --redis: every good per-context answer is shared with the other relays of this
// upstream, and theirs are taken when newer than what is held here (judgeShared); the held answers
// are listed for the write-back into a store that lost them (see heldWriteBack.ts).
import type { ServerLogger } from '../logger'
import { setBounded } from '../lru'
import type { SharedContexts, SharedTicket } from '../store/sharedContexts'
import type { SharedContextsOptions } from '../store/sharedContextsOptions'
import type { StoredDocument } from '../store/sharedStore'
import { DEFAULT_MAX_CONTEXTS, fromContextRecord, toContextRecord, type ContextCache, type HeldContext } from './contextCache'
import { contextRecordSchema, readRecord } from './records'
import { judgeShared } from './sharedTake'

// An answer whose content did not change is shared again at most this often (it carries the newer
// fetchedAt), so a busy relay does not write to Redis on every request.
const RESHARE_AFTER_MS = 30_000

/** What {@link createSharedAnswers} needs from the proxy source. */
export interface SharedAnswersOptions {
  /** `--redis`: given the hook that takes another relay's answer and the list of those held here, returns the shared store's driver. Default: none (nothing shared). */
  share?: (take: SharedContextsOptions['take'], held?: SharedContextsOptions['held']) => SharedContexts
  /** The held contexts. */
  cache: ContextCache
  /** Bound on the contexts remembered as shared (the oldest out). Default 10,000. */
  maxContexts?: number
  /** Decides first on each document another relay wrote (a drop marker, an answer from before a drop here: see upstreamDrops.ts); hands the others to the answer's taker. */
  admit: (key: string, doc: StoredDocument, takeAnswer: (key: string, doc: StoredDocument) => boolean) => boolean | Promise<boolean>
  /** Told when another relay's answer is taken: the upstream answered it (the breaker probes now). */
  heard: () => void
  /** Told when another relay's answer `taken` replaced `held` here (news for the streams). */
  taken: (held: HeldContext, taken: HeldContext) => void
  /** Saves the held contexts (to the data dir) after a change of content. */
  save: (contentChanged: boolean) => void
  /** The relay's clock (epoch ms) and its steady clock (see steadyClock.ts). */
  now: () => number
  steady: () => number
  log: ServerLogger
}

/** The answers one proxy source shares through the store. */
export interface SharedAnswers {
  /** The shared store's driver; none without --redis. */
  store: SharedContexts | undefined
  /** Shares `held`, the answer for `key` (`changed`: its content, or a drop it ends), at `version` (its ticket). */
  share(key: string, held: HeldContext, changed: boolean, version?: SharedTicket): void
}

/** Creates the sharing of a proxy source's answers (nothing without `share`). */
export function createSharedAnswers(options: SharedAnswersOptions): SharedAnswers {
  const { cache, heard, taken, save, now, steady, log } = options
  // When (the steady clock) each context's answer was last shared: see RESHARE_AFTER_MS.
  const sharedAt = new Map<string, number>()
  const remember = (key: string, at: number) => setBounded(sharedAt, key, at, options.maxContexts ?? DEFAULT_MAX_CONTEXTS)
  // An answer in the store this relay cannot read is refused (never served), and said: before, a
  // fleet of two relay versions whose records differ stopped sharing answers without a word. At
  // most once a minute (on the steady clock), with the count since: another version shares every answer.
  let unreadable = 0
  let unreadableWarnedAt: number | undefined
  const unreadableShared = (version: number) => {
    unreadable++
    const at = steady()
    if (unreadableWarnedAt !== undefined && at - unreadableWarnedAt < 60_000) return
    log.warn(`cannot read ${unreadable === 1 ? 'an answer' : `${unreadable} answers`} in the store (the latest at version ${version}): written by another version of the relay, or by hand? Not served; this relay serves what it holds and asks the upstream`)
    unreadableWarnedAt = at
    unreadable = 0
  }
  // Another relay's answer for a context, taken when it is newer than what is held here.
  function takeShared(key: string, doc: StoredDocument): boolean {
    const saved = readRecord(contextRecordSchema, doc.body)
    if (!saved || saved.key !== key) {
      unreadableShared(doc.version)
      return false
    }
    // Another relay got this answer from the upstream: this one's breaker probes now (see upstreamBreaker.ts).
    heard()
    const held = cache.get(key)
    const verdict = judgeShared(held, saved, doc.version, now)
    if (verdict.kind !== 'take') return verdict.kind === 'kept'
    const { same } = verdict
    const next = fromContextRecord(saved, 'upstream')
    next.storeVersion = doc.version
    next.taken = true
    if (held?.request) next.request = held.request
    cache.set(key, next)
    remember(key, steady())
    save(true)
    // A context never held here is no change (each relay takes every answer the fleet shares, and
    // holds the fleet's contexts from its start on): a crawler of new users on another relay made
    // a notice every 250 ms to every tab here for as long as it crawled.
    if (!same && held) taken(held, next)
    return true
  }
  const shareable = (key: string, held: HeldContext) => ({ body: JSON.stringify(toContextRecord(key, held)), fetchedAt: held.fetchedAt, ...(held.etag === undefined ? {} : { etag: held.etag }) })
  // A marker is read only as one, never as values (see `admit`).
  const store = options.share?.((key, doc) => options.admit(key, doc, takeShared), () => cache.entries().map(([key, held]) => [key, () => {
    const current = cache.peek(key)
    return current && shareable(key, current)
  }, held.source === 'data-dir', held.storeVersion, (version: number) => {
    // The data dir's place for it was one the store cannot have handed out (written against
    // another Redis whose clock ran ahead, or by hand): the store holds it at `version` now.
    const current = cache.peek(key)
    if (current && current.source === 'data-dir' && current.storeVersion === held.storeVersion && current.storeVersion !== undefined && current.storeVersion > version) {
      current.storeVersion = version
      save(true)
    }
  }]))
  return {
    store,
    share(key, held, changed, version) {
      if (!store) return
      // On the steady clock: set back an hour, an unchanged answer was not shared again for the hour.
      const at = steady()
      const last = sharedAt.get(key)
      if (!changed && last !== undefined && at - last < RESHARE_AFTER_MS) return
      remember(key, at)
      store.answered(key, shareable(key, held), version)
    },
  }
}
