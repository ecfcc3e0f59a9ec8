import { createLeaseKeeper, type LeaseRole } from './leaseKeeper'
import type { SharedDefinitionsOptions } from './sharedDefinitionsOptions'
import type { StoredDocument, StoreStatus } from './sharedStore'
import { createStoreReplica } from './storeReplica'
import { readUpstreamReport, type UpstreamReport } from './upstreamReport'
import { shrinkAcceptance } from '../flags/shrinkGuard'

/** What one poll of the upstream gave: the definitions now served (applied or confirmed unchanged), or nothing usable. */
export type PollOutcome =
  | {
      /** The poll got a usable answer (changed or not). */
      ok: true
      /** The definitions' text, as served. */
      text: string
      /** Epoch ms when the upstream answered. */
      fetchedAt: number
      /** The upstream's ETag, when it sent one. */
      etag?: string
      /** Its lineage (see `StoredDocument.lineage`), when known. */
      lineage?: string
    }
  | {
      /** The poll failed: nothing is published, the report still goes out. */
      ok: false
    }

/** The relay's side of a shared store in the definitions modes: see {@link createSharedDefinitions}. */
export interface SharedDefinitions {
  /**
   * Connects, competes for the lease and reads what the store holds. Resolves once that first
   * read settled: at most `connectWaitMs` for the connection, then the store's command timeout.
   */
  start(): Promise<void>
  /** Whether this relay should ask the upstream now: it is the leader, or cut off from the store (`solo`). */
  shouldPoll(): boolean
  /**
   * After each poll by this relay: a success is published (a new version when the text changed,
   * otherwise the stored one's TTL is renewed, which also repopulates a Redis that restarted
   * empty); the report goes out either way. Fire and forget: never rejects, never blocks a request.
   */
  polled(outcome: PollOutcome, report: UpstreamReport, asked?: Asked): void
  /** What {@link polled} needs to know of the moment a poll was asked: call right before asking. Optional for older implementations. */
  asking?(): Asked
  /** This relay's role now: `leader` (polls and publishes), `follower` (takes) or `solo` (cut off from the store, polls alone). */
  role(): LeaseRole
  /** The leader's latest report, as a follower last read it. */
  leaderReport(): UpstreamReport | undefined
  /**
   * An operator accepted the shrink to definitions keeping the flags `version` names
   * (`shrinkAcceptance`: their keys, not the document's bytes, which an upstream may stamp anew on
   * each fetch) on this relay (`acceptShrink`): told to the fleet for {@link ACCEPT_SHRINK_TTL_MS},
   * and again when the store comes back (a Redis restarted empty) until used, so that the leader,
   * whose guard refuses the same shrink, applies and publishes it too. Fire and forget. Optional.
   */
  acceptShrink?(version: string): void
  /**
   * Whether an operator accepted the shrink to the flags `version` names on some relay of the fleet (see
   * {@link acceptShrink}), using the acceptance up: it is honoured once (the same shrink again, the
   * upstream back to that document later, is guarded again). Optional.
   */
  takeAcceptedShrink?(version: string): Promise<boolean>
  /** The store's connection, this relay's role and the version last written or taken, for the status route. */
  status(): SharedStatus
  /** Releases the lease (a follower takes over at once) and disconnects (see `closeStore`). */
  stop(): Promise<void>
}

/** This relay's side of the store when it asked the upstream (see {@link SharedDefinitions.asking}). */
export interface Asked {
  /** Whether it held the lease then. */
  leading: boolean
  /** The newest version of the definitions it had seen then. */
  seen?: number
  /** The newest version of anything it had seen then (the definitions or a report: one clock numbers both). */
  newest?: number
}

/** `redis` in `/holdfast/v1/status`: the connection, this relay's role and what it took from the store. */
export interface SharedStatus extends StoreStatus {
  /** This relay's role: `leader`, `follower` or `solo`. */
  role: LeaseRole
  /** The version of the definitions last written or taken (the store's order). */
  version?: number
  /** Documents taken from the store (polled by another relay). */
  taken: number
}

const DEFINITIONS = 'definitions'
const UPSTREAM = 'upstream'

/**
 * How long an operator's `acceptShrink` on one relay stands for the fleet: 10 minutes, many polls
 * of the leader. It names one set of flags kept (a hash of their keys), so a later upstream change is guarded again.
 */
export const ACCEPT_SHRINK_TTL_MS = 10 * 60_000
const acceptedFlag = (version: string) => `accept-shrink:${version}`

/**
 * Definitions shared through a store (`--redis`): one relay at a time polls the
 * upstream (the lease) and publishes what it serves; the others take each new version the moment
 * it is announced, and read the store at start and whenever it comes back. A relay cut off from
 * the store keeps serving what it holds and polls on its own (`solo`) until it is back.
 */
export function createSharedDefinitions(options: SharedDefinitionsOptions): SharedDefinitions {
  const { store, log } = options
  let lastReport: UpstreamReport | undefined
  let taken = 0
  // The store's copy is one this relay refuses only by its own stricter rules (`take` said
  // 'keep'): the fleet's flags. What this relay serves is then not written back, neither over it
  // nor into a store that lost it (a Redis restarted empty): that would bring the flags the
  // upstream deleted back to every relay. What its own polls give is still published.
  let keeping = false
  // That copy, to put back into a store that lost it (a Redis restarted empty): the fleet's flags,
  // not this relay's, so a relay started meanwhile serves what the fleet served.
  let kept: StoredDocument | undefined
  // The shrink an operator accepted on this relay, until it is used or its time is up (monotonic
  // ms): told to the fleet again when the store comes back. Kept only in Redis, a Redis restarted
  // empty within the 10 minutes lost it, the leader went on refusing, and the fleet served two
  // flag sets for good.
  // `after`: the store's version this relay had seen when the operator accepted it.
  let accepted: { name: string; until: number; after: number } | undefined
  const raiseAccepted = () => {
    if (!accepted) return
    const left = accepted.until - performance.now()
    if (left < 1000) return void (accepted = undefined)
    void store.raise?.(acceptedFlag(accepted.name), Math.round(left))
  }
  const keeper = createLeaseKeeper({
    store,
    ttlMs: options.leaseTtlMs,
    log,
    onChange: (role) => {
      if (role === 'leader') writeBack()
      options.onRole?.(role)
    },
  })
  const replica = createStoreReplica({
    store,
    log,
    initialKeys: [DEFINITIONS, UPSTREAM],
    checkEveryMs: options.checkEveryMs,
    // Read again after the store came back: what it holds now says whether the acceptance was used.
    onReread: raiseAccepted,
    async accept(key, doc) {
      if (key === UPSTREAM) {
        const report = readUpstreamReport(doc.body)
        if (!report) return false
        lastReport = report
        // The leader's report matters to followers only; the leader (or a solo relay) knows better.
        if (keeper.role() === 'follower') options.report?.(report, doc.version)
        return true
      }
      if (key !== DEFINITIONS) return false
      // The store's copy keeps the flags accepted: the leader applied it, the acceptance is used
      // (one raised again since, in the instant before this copy was read, is taken back).
      if (accepted && shrinkAcceptance(doc.body) === accepted.name) {
        void store.lower?.(acceptedFlag(accepted.name))
        accepted = undefined
      }
      // Any other copy published since: the fleet moved on (the leader used the acceptance while
      // this relay was cut off from the store, and published newer flags after). Not told again:
      // before, this relay raised it anew when the store came back, and a later shrink to the same
      // flags within its 10 minutes was applied by the leader with no operator accepting it.
      if (accepted && doc.version > accepted.after) accepted = undefined
      const took = await options.take(doc)
      keeping = took === 'keep'
      kept = keeping ? doc : undefined
      if (took === true) taken++
      return took === true
    },
  })

  // Only the leader, and only under its lease: an older version in the store is replaced, a newer
  // one is taken instead (the replica's rules). The store is read first: what this relay serves may
  // be older than a version it has not seen yet (it was cut off from the store and polled on its
  // own while the leader published), and a fresh ticket would put that older copy over it.
  // What is served is read when the write's turn comes, after the takes queued before it.
  const writeBack = () => {
    if (keeper.role() === 'leader' && keeping && kept) {
      const copy = kept
      void store
        .peek(DEFINITIONS)
        .then((held) => {
          if (!held.ok || held.value !== undefined || !keeping || kept !== copy) return
          log?.warn(`the store lost the fleet's flags (version ${copy.version}): putting back the copy taken from it (this relay still serves its own, by its stricter --max-shrink)`)
          return replica.publish(DEFINITIONS, { body: copy.body, fetchedAt: copy.fetchedAt, ...(copy.etag === undefined ? {} : { etag: copy.etag }), ...(copy.lineage ? { lineage: copy.lineage } : {}) }, keeper.owner)
        })
        .catch((error: unknown) => log?.error(`writing back to the store failed: ${(error as Error)?.message ?? String(error)}`))
      return
    }
    if (!options.served || keeper.role() !== 'leader' || keeping) return
    const served = options.served
    replica
      .publishLate(DEFINITIONS, () => {
        const local = keeping ? undefined : served()
        return local && { body: local.text, fetchedAt: local.fetchedAt, ...(local.etag === undefined ? {} : { etag: local.etag }), ...(local.lineage ? { lineage: local.lineage } : {}) }
      }, keeper.owner)
      .catch((error: unknown) => log?.error(`writing back to the store failed: ${(error as Error)?.message ?? String(error)}`))
  }
  let unsubscribe: (() => void) | undefined

  return {
    async start() {
      store.open()
      unsubscribe ??= store.subscribe((notice) => {
        if (notice.type === 'connected') writeBack()
      })
      const held = options.held?.()
      if (held) replica.seed(DEFINITIONS, held)
      await store.connected(options.connectWaitMs ?? 2000)
      await Promise.all([keeper.start(), replica.start()])
    },
    shouldPoll: () => keeper.role() !== 'follower',
    asking: () => {
      const versions = [replica.version(DEFINITIONS), replica.version(UPSTREAM)].filter((v): v is number => v !== undefined)
      return { leading: keeper.role() === 'leader', seen: replica.version(DEFINITIONS), newest: versions.length > 0 ? Math.max(...versions) : undefined }
    },
    polled(outcome, report, asked) {
      if (keeper.role() === 'follower') return
      // In order: the definitions first, so a follower told "ok" already has them. Only while this
      // relay holds the lease: a leader stalled past it (it still believes it leads), or a solo
      // relay whose Redis is back, must not write what it fetched over what the leader published.
      // An answer asked for without the lease (solo) and back once this relay leads loses to any
      // version taken since it was asked: the leader then may have asked later.
      void (async () => {
        const lease = keeper.owner
        if (outcome.ok) {
          const local = { body: outcome.text, fetchedAt: outcome.fetchedAt, etag: outcome.etag, lineage: outcome.lineage }
          const published = await (asked && !asked.leading ? replica.publishLate(DEFINITIONS, local, lease, asked.seen ?? -Infinity) : replica.publish(DEFINITIONS, local, lease))
          const version = replica.version(DEFINITIONS)
          if (published === 'written' || published === 'refreshed') keeping = false
          if (published === 'written' && version !== undefined) options.published?.(version)
        }
        await replica.publish(UPSTREAM, { body: JSON.stringify(report), fetchedAt: report.lastAttemptAt ?? Date.now() }, lease)
      })().catch((error) => log?.error(`publishing to the store failed: ${(error as Error).message}`))
    },
    role: () => keeper.role(),
    leaderReport: () => lastReport,
    acceptShrink(version) {
      accepted = { name: version, until: performance.now() + ACCEPT_SHRINK_TTL_MS, after: replica.version(DEFINITIONS) ?? -Infinity }
      void store.raise?.(acceptedFlag(version), ACCEPT_SHRINK_TTL_MS).then((result) => {
        if (!result.ok) log?.warn(`could not tell the fleet that the shrink was accepted (${result.error}): send the refresh to the leader too`)
      })
    },
    async takeAcceptedShrink(version) {
      const result = await store.lower?.(acceptedFlag(version))
      return result?.ok === true && result.value
    },
    status: () => ({ ...store.status(), role: keeper.role(), version: replica.version(DEFINITIONS), taken }),
    async stop() {
      unsubscribe?.()
      replica.stop()
      await keeper.stop()
      if (options.closeStore !== false) await store.close()
    },
  }
}
