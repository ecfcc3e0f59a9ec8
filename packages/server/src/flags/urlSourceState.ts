// The state a --flags-url source's parts share (urlSource.ts, urlServing.ts, urlSharing.ts,
// urlPoll.ts): one object, read and written in place by each, so every part sees the others'
// writes at once. Never copy a field out of it to keep.
import type { StoredDocument } from '../store/sharedStore'
import type { LineageStep } from './lineage'
import type { Poller } from './poller'
import type { RefreshResult } from './refreshResult'
import { initialHealth, type UpstreamHealth } from './upstreamHealth'

/** What a --flags-url source knows between calls; see {@link createUrlSourceState} for the values at creation. */
export interface UrlSourceState {
  /** The upstream's health as the polls (or, on a follower, the leader's reports) left it. */
  health: UpstreamHealth
  /**
   * The upstream's ETag of exactly what is served; never that of a refused document, or the next
   * poll's 304 would "confirm" content the relay refused.
   */
  etag: string | undefined
  /** Epoch ms before which the scheduled polls are skipped (an upstream's Retry-After). */
  notBefore: number
  /** The document the guard refused last (what `acceptShrink` applies), until one is applied. */
  lastRefused: { text: string; etag?: string; at: number; message: string } | undefined
  /** The poller, from `open()` on. */
  poller: Poller<RefreshResult> | undefined
  /** The exact text served, so a restart computes the same version from the data dir. */
  servedText: string | undefined
  /** --redis: what this relay took from the store last, to tell whether the leader's "ok" vouches for what is served. */
  takenText: string | undefined
  /**
   * `--on-upstream-unauthorized`: the version this relay dropped (here or, from the data dir, before
   * a restart). The store may still hold it, unchanged since the last good poll: it is not taken
   * from there until the upstream is known to answer again (then it is taken at once).
   */
  droppedVersion: string | undefined
  /**
   * --redis: the store's version of what is served (taken from it, or published to it), kept in
   * the data dir so that a restart does not take an older copy from a Redis restored from a dump.
   */
  storeVersion: number | undefined
  /**
   * --redis: for a text this relay polled itself (no store version yet: it may have been cut off
   * from the store), the newest store version it had seen when it asked. Kept in the data dir: after
   * a restart, a copy in the store up to that version is older than the data dir's.
   */
  storeSince: number | undefined
  /** --redis: the newest store version seen when the poll in flight (or the last) was asked; a new text's `storeSince`. */
  askedSince: number | undefined
  /** What the data-dir or snapshot layer served since start knows of the store's order (see layerOrder.ts). */
  layerSince: number | undefined
  /**
   * --redis: when (on this relay's steady clock, see steadyClock.ts) the leader last reported, or
   * this relay became a follower. On the wall clock, set back an hour, a report looked an hour
   * ahead: the follower said fresh for the hour whatever became of the leader.
   */
  reportAt: number | undefined
  /** What the data dir gave at start with a store version: the upstream's word, offered to the store as held. */
  loaded: { text: string; fetchedAt: number; etag?: string; storeVersion: number } | undefined
  /**
   * --redis: the steps that led to what is served (lineage.ts), published and saved with it, so a
   * follower that missed some can tell a fleet that shrank in steps from a broken upstream.
   */
  lineage: LineageStep[]
  /** --redis: the store's copy refused here, and why (the status says it, with the remedy). */
  refusedCopy: { version: number; at: number; message: string } | undefined
  /** …and the definitions' version (hash) of that copy. */
  refusedCopyOf: string | undefined
  /** --redis: the store's copy not taken yet (dropped here, or older than the layer served), taken once the upstream is heard from. */
  heldBack: StoredDocument | undefined
}

/** The state of a --flags-url source at creation: healthy, nothing served, fetched, refused nor shared yet. */
export function createUrlSourceState(): UrlSourceState {
  return {
    health: initialHealth(true),
    etag: undefined,
    notBefore: 0,
    lastRefused: undefined,
    poller: undefined,
    servedText: undefined,
    takenText: undefined,
    droppedVersion: undefined,
    storeVersion: undefined,
    storeSince: undefined,
    askedSince: undefined,
    layerSince: undefined,
    reportAt: undefined,
    loaded: undefined,
    lineage: [],
    refusedCopy: undefined,
    refusedCopyOf: undefined,
    heldBack: undefined,
  }
}

/** The lineage to publish with what is served: none while it is empty. */
export const lineageText = (state: UrlSourceState): { lineage?: string } => (state.lineage.length > 0 ? { lineage: JSON.stringify(state.lineage) } : {})
