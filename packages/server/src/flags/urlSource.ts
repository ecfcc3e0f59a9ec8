// --flags-url URL: flagd definitions over HTTP(S) (a bucket, a ConfigMap behind a web server, a
// git raw URL), polled with If-None-Match, with last known good on the server side: the layers
// loaded at start (data dir, snapshot), every fetched document offered to the guarded slot, each
// applied one saved as a new data-dir generation. The parts share one state (urlSourceState.ts):
// what is served and kept (urlServing.ts), the poll (urlPoll.ts), --redis (urlSharing.ts).
import { createListeners, type FlagSourceEvent, type FlagSourceStatus } from './flagSource'
import { closePersistence, createPersistence, type Persistence } from './persistence'
import { createPoller } from './poller'
import { ageSeconds, createAgeReader } from './ageReader'
import { servedSourceOf, sourceStatusOf, upstreamStatusOf, type RelaySource } from './relay'
import type { HoldfastMetadata, RelayStatus } from './relayStatus'
import { createDefinitionsSlot } from './servedDefinitions'
import { shrinkAcceptance } from './shrinkGuard'
import { nothingToServe, type SnapshotState } from './snapshotFile'
import { waitAtMost } from './startupWait'
import { redactUrl } from './upstreamFetch'
import { loadUrlLayers } from './urlLayers'
import { createSteadyClock } from './steadyClock'
import { createUrlPoll } from './urlPoll'
import { createUrlServing } from './urlServing'
import { shareUrlDefinitions } from './urlSharing'
import { createUrlSourceState } from './urlSourceState'
import type { UrlSourceOptions } from './urlSourceOptions'

export type { UrlSourceOptions } from './urlSourceOptions'

// --redis: the leader reports after every poll, so a follower hears from it at least every poll
// interval plus one poll's timeout; this much more is left for Redis (two writes, a notice, a read).
const REPORT_GRACE_MS = 2000

/** Creates the source; nothing happens until `open()`. */
export function createUrlSource(options: UrlSourceOptions): RelaySource {
  const { log } = options
  const now = options.now ?? Date.now
  const where = redactUrl(options.url)
  const listeners = createListeners<FlagSourceEvent>()
  const slot = createDefinitionsSlot({ maxShrinkPercent: options.maxShrinkPercent, strict: options.strict, warn: (m) => log.warn(`${where}: ${m}`) })
  const persistence: Persistence | undefined = options.store && createPersistence({
    store: options.store,
    now,
    log,
    onResult: (ok) => options.events?.saved(ok),
  })
  const state = createUrlSourceState()
  // `--snapshot`: whether it could be used at start (a torn one is reported, not served).
  let snapshotState: SnapshotState | undefined
  let snapshotTorn = false
  // --redis: when the leader last reported is read on this relay's steady clock (see steadyClock.ts).
  const steady = createSteadyClock(now)
  // The status' ageSeconds (see ageReader.ts): a clock set back in an outage does not make it 0 for the hour.
  const statusAge = createAgeReader()
  const serving = createUrlServing({ options, state, slot, persistence, emit: listeners.emit, where, now, steady })
  const { offer, toRefresh } = serving
  const shared = shareUrlDefinitions({ options, state, slot, serving, emit: listeners.emit, where, now, steady })
  // Closing abandons a poll in flight instead of waiting out its timeout.
  const closing = new AbortController()
  const pollAndShare = createUrlPoll({ options, state, slot, serving, shared, signal: closing.signal, where, now })

  /** Serves the newest valid of the data dir and the snapshot (urlLayers.ts) while the upstream is asked. */
  const loadLayers = async (): Promise<void> => {
    const found = await loadUrlLayers({ slot, store: options.store, snapshotPath: options.snapshotPath, where, now, log })
    snapshotState = found.snapshot
    snapshotTorn = found.snapshotTorn === true
    if (found.droppedVersion !== undefined) state.droppedVersion = found.droppedVersion
    if (!found.loaded) return
    const { candidate, result } = found.loaded
    state.etag = candidate.etag
    state.servedText = candidate.text
    state.storeVersion = candidate.storeVersion
    state.storeSince = candidate.storeSince
    state.lineage = candidate.lineage ?? []
    state.layerSince = candidate.storeVersion ?? candidate.storeSince
    if (candidate.storeVersion !== undefined) state.loaded = { text: candidate.text, fetchedAt: candidate.fetchedAt, etag: candidate.etag, storeVersion: candidate.storeVersion }
    log.info(`serving ${result.version.flagCount} flags from the ${candidate.origin} (fetched ${new Date(candidate.fetchedAt).toISOString()}) while ${where} is asked`)
    listeners.emit({ type: 'update', version: result.version, changed: result.changed })
  }

  /**
   * A follower's "ok" is the leader's latest report, and a report ages: a leader killed (its lease
   * lasts one TTL more) or hung (its lease renewed) while the upstream is down said nothing more,
   * and its last "ok" read as fresh for a TTL and a poll timeout, or for ever. Past a poll interval,
   * a poll's timeout and a margin without a report, nothing vouches for the flags: stale.
   */
  const leaderSilent = (): boolean => state.reportAt !== undefined && shared?.role() === 'follower' && steady() - state.reportAt > options.pollIntervalMs + options.timeoutMs + REPORT_GRACE_MS
  const stale = (): boolean => {
    const served = slot.current()
    return !served || served.origin !== 'url' || state.health.state !== 'ok' || leaderSilent()
  }

  return {
    origin: 'url',
    async open() {
      await loadLayers()
      // With --redis: what the store holds (a newer version than the data dir's replaces it), and
      // whether this relay is the one that polls. Awaited (boundedly) only with nothing to serve:
      // a relay with a data dir starts at once, and a new role polls when it is known.
      const sharing = shared?.start()
      if (!slot.current()) await sharing
      const allowed = shared ? () => shared.shouldPoll() : options.shouldPoll
      state.poller = createPoller({ intervalMs: options.pollIntervalMs, poll: pollAndShare, shouldPoll: () => (allowed?.() ?? true) && now() >= state.notBefore })
      const first = state.poller.start()
      // With something to serve, start at once (well under a second) and let the first attempt
      // run; with nothing, wait for it (boundedly), so that a healthy upstream means ready on return.
      if (!slot.current()) await waitAtMost(first)
      // A torn --snapshot is only a refusal to start when nothing else has flags either.
      if (!slot.current() && snapshotTorn && snapshotState) throw nothingToServe(snapshotState, `neither the data dir nor ${where} gave flags to serve`)
    },
    current: () => slot.current(),
    subscribe: listeners.add,
    async refresh() {
      const result = await (state.poller ? state.poller.now() : pollAndShare())
      return slot.current() !== undefined && (result.outcome === 'applied' || result.outcome === 'unchanged')
    },
    status(): FlagSourceStatus {
      return sourceStatusOf(state.health, slot.current() !== undefined)
    },
    async close() {
      state.poller?.stop()
      serving.stop()
      closing.abort()
      await shared?.stop()
      await closePersistence(persistence, log)
    },
    freshness(): HoldfastMetadata | undefined {
      const served = slot.current()
      return served && { source: servedSourceOf(served.origin), fetchedAt: served.fetchedAt, stale: stale() }
    },
    relayStatus(): RelayStatus {
      const served = slot.current()
      const status: RelayStatus = {
        ready: served !== undefined,
        mode: 'flags-url',
        source: served ? servedSourceOf(served.origin) : 'none',
        version: served?.version ?? null,
        fetchedAt: served?.fetchedAt ?? null,
        ageSeconds: ageSeconds(statusAge, served?.fetchedAt, now()),
        stale: stale(),
        upstream: upstreamStatusOf(state.health, where),
        refused: state.health.refused,
        refusedBy: state.health.refusedBy,
        flags: served?.flagCount ?? 0,
      }
      if (persistence) status.dataDir = persistence.state()
      if (snapshotState) status.snapshot = snapshotState
      if (shared) status.redis = state.refusedCopy ? { ...shared.status(), refusedCopy: state.refusedCopy } : shared.status()
      return status
    },
    async refreshDetails(refreshOptions = {}) {
      const result = await (state.poller ? state.poller.now() : pollAndShare())
      // An operator who means it: apply a document the shrink guard refused (never an empty or an
      // invalid one: the slot refuses those whatever the guard says).
      if (result.outcome === 'refused' && refreshOptions.acceptShrink && state.lastRefused) {
        const storeCopy = state.refusedCopy && state.refusedCopyOf
        // Named before the offer, which forgets what it refused once it applies it.
        const acceptance = shrinkAcceptance(state.lastRefused.text)
        const forced = await offer(state.lastRefused.text, 'url', state.lastRefused.at, state.lastRefused.etag, false)
        if (forced.applied) {
          // A follower does not publish: the leader, whose guard refuses the same document, is told
          // (not when it is the store's copy, which the leader serves already: an acceptance left
          // in Redis would pass the same shrink on the leader later).
          if (shared?.role() === 'follower' && forced.version.version !== storeCopy && acceptance !== undefined) shared.acceptShrink?.(acceptance)
          return toRefresh('applied', forced.changed)
        }
      }
      return result
    },
  }
}
