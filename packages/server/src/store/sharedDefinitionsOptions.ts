// What the --flags-url relay (urlSource.ts, urlSharing.ts) hands createSharedDefinitions: the
// store, and the hooks by which the fleet's definitions, reports and roles reach it.
import type { ServerLogger } from '../logger'
import type { LeaseRole } from './leaseKeeper'
import type { SharedStore, StoredDocument } from './sharedStore'
import type { UpstreamReport } from './upstreamReport'

/** Options of {@link createSharedDefinitions}. */
export interface SharedDefinitionsOptions {
  /** The shared store the definitions, the lease and the leader's reports live in. Required. */
  store: SharedStore
  /** Whether {@link SharedDefinitions.stop} closes the store (false for a store shared in-process). Default true. */
  closeStore?: boolean
  /** Longest wait for the store's connection at start. Default 2000 ms. */
  connectWaitMs?: number
  /** The lease TTL (see `createLeaseKeeper`). Default 15000 ms. */
  leaseTtlMs?: number
  /**
   * How often a follower reads the versions of the definitions and of the leader's report in case
   * a notice was lost (a subscription gone silent: a half-open connection fails nothing). Give the
   * poll interval (at most 5 s): a lost notice then costs at most an interval more, and the
   * leader's reports, made every poll, keep coming, so a healthy leader never reads as silent.
   * Default 5000 ms.
   */
  checkEveryMs?: number
  /**
   * Offers definitions that another relay polled (or that the store held at start) to this relay's
   * guarded slot; returns whether they are now served. Called only for a version newer than any
   * this relay has seen. `'keep'`: refused, but the fleet's (only this relay's stricter rules refuse
   * it): what this relay serves is not written back while it is the store's copy; a poll's result still is.
   */
  take(doc: StoredDocument): boolean | 'keep' | Promise<boolean | 'keep'>
  /**
   * The leader's latest upstream report, on followers, with its version in the store (published
   * right after the definitions of the same poll). Default: ignored.
   */
  report?(report: UpstreamReport, version: number): void
  /** The role changed; a relay that becomes `leader` or `solo` should poll at once. Default: ignored. */
  onRole?(role: LeaseRole): void
  /**
   * What this relay serves from the upstream (polled, or taken from the store), if anything. When
   * it becomes the leader, and when the store comes back, it is written back, so a Redis restarted
   * empty or from an old dump holds what the relays serve even while the upstream is down.
   * Default: nothing is written back (only polls publish).
   */
  served?(): { text: string; fetchedAt: number; etag?: string; lineage?: string } | undefined
  /**
   * The definitions this relay holds from before a restart (its data dir) with the store version
   * they had, read at start: the store's copy is taken only when it is newer (a Redis restored from
   * an older dump must not move the relay back). Default: none.
   */
  held?(): StoredDocument | undefined
  /** A version of this relay's definitions was written to the store (to be kept with them). Default: ignored. */
  published?(version: number): void
  /** Where failed write-backs and a store that lost the fleet's flags are reported. Default: none (not reported). */
  log?: ServerLogger
}
