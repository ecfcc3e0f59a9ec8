// --flags-url URL: flagd definitions over HTTP(S) (a bucket, a ConfigMap behind a web server, a
// git raw URL), polled with If-None-Match, with last known good on the server side: the layers
// loaded at start (data dir, snapshot), every fetched document offered to the guarded slot, each
// applied one saved as a new data-dir generation.
import type { SharedDefinitions, SharedDefinitionsOptions, UpstreamReport } from '../store/sharedDefinitions'
import type { StoredDocument } from '../store/sharedStore'
import { versionOf } from './flagDefinitions'
import { createListeners, type FlagDefinitionsVersion, type FlagOrigin, type FlagSourceEvent, type FlagSourceStatus } from './flagSource'
import { isOlderThanLayer } from './layerOrder'
import { checkLineage, extendLineage, readLineage, type LineageStep, type LineageVerdict } from './lineage'
import { closePersistence, createPersistence, type Persistence } from './persistence'
import { createPoller, type Poller } from './poller'
import { ageSeconds, createAgeReader } from './ageReader'
import { servedSourceOf, sourceStatusOf, upstreamStatusOf, type HoldfastMetadata, type RefreshResult, type RelaySource, type RelaySourceOptions, type RelayStatus } from './relay'
import { createDefinitionsSlot, type OfferResult } from './servedDefinitions'
import { checkShrink, shrinkAcceptance } from './shrinkGuard'
import { nothingToServe, type SnapshotState } from './snapshotFile'
import { waitAtMost } from './startupWait'
import { redactUrl, upstreamFetch } from './upstreamFetch'
import { followReport, initialHealth, reduceHealth, reportOfHealth, shouldClear, type HealthEvent, type UpstreamHealth } from './upstreamHealth'
import { loadUrlLayers } from './urlLayers'
import { createSteadyClock } from './steadyClock'

/** Options of {@link createUrlSource}. */
export interface UrlSourceOptions extends RelaySourceOptions {
  /** The flagd document's URL (http or https). */
  url: string
  /** Milliseconds between polls (`--poll-interval` × 1000; default there 10 s). */
  pollIntervalMs: number
  /**
   * Asked before each scheduled poll; false skips it (e.g. another relay holds the Redis lease and
   * this one takes new definitions from the store instead). Refresh is never gated. Default: always.
   */
  shouldPoll?: () => boolean
  /** Sent with every poll (e.g. a token for a private bucket). Default: none. */
  headers?: Record<string, string>
  /** Refuse documents that break flagd's JSON schema. Default in `createFlagServer`: true. */
  strict: boolean
  /**
   * `--redis`: shares the definitions with the other relays of this source. Given the hooks of this
   * source, returns the shared store's driver; only its leader polls. Default: none (polls alone).
   */
  share?: (hooks: Pick<SharedDefinitionsOptions, 'take' | 'report' | 'onRole' | 'served' | 'held' | 'published'>) => SharedDefinitions
}

const RESAVE_AFTER_MS = 30_000
// An upstream's 429/503 `Retry-After` holds the scheduled polls back for at most this long ("10
// years" must not stop them); an operator's refresh still goes out.
const MAX_POLL_PAUSE_MS = 60_000
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
  let health: UpstreamHealth = initialHealth(true)
  // The upstream's ETag of exactly what is served; never that of a refused document, or the next
  // poll's 304 would "confirm" content the relay refused.
  let etag: string | undefined
  // Epoch ms before which the scheduled polls are skipped (an upstream's Retry-After).
  let notBefore = 0
  let lastRefused: { text: string; etag?: string; at: number; message: string } | undefined
  let poller: Poller<RefreshResult> | undefined
  // The exact text served, so a restart computes the same version from the data dir.
  let servedText: string | undefined
  // --redis: what this relay took from the store last, to tell whether the leader's "ok" vouches for what is served.
  let takenText: string | undefined
  // `--on-upstream-unauthorized`: the version this relay dropped (here or, from the data dir, before
  // a restart). The store may still hold it, unchanged since the last good poll: it is not taken
  // from there until the upstream is known to answer again (then it is taken at once).
  let droppedVersion: string | undefined
  // `--snapshot`: whether it could be used at start (a torn one is reported, not served).
  let snapshotState: SnapshotState | undefined
  let snapshotTorn = false
  // --redis: the store's version of what is served (taken from it, or published to it), kept in
  // the data dir so that a restart does not take an older copy from a Redis restored from a dump.
  let storeVersion: number | undefined
  // --redis: for a text this relay polled itself (no store version yet: it may have been cut off
  // from the store), the newest store version it had seen when it asked. Kept in the data dir: after
  // a restart, a copy in the store up to that version is older than the data dir's.
  let storeSince: number | undefined
  let askedSince: number | undefined
  // What the data-dir or snapshot layer served since start knows of the store's order (see
  // `olderThanLayer`), and the store version of the leader's latest report of a good poll.
  let layerSince: number | undefined
  let vouchedVersion: number | undefined
  // --redis: when (on this relay's steady clock, see steadyClock.ts) the leader last reported, or
  // this relay became a follower. On the wall clock, set back an hour, a report looked an hour
  // ahead: the follower said fresh for the hour whatever became of the leader.
  const steady = createSteadyClock(now)
  // The status' ageSeconds (see ageReader.ts): a clock set back in an outage does not make it 0 for the hour.
  const statusAge = createAgeReader()
  let reportAt: number | undefined
  // A store copy newer than the layer was refused here (the guard): the layer is not written over it.
  let newerRefused = false
  let loaded: { text: string; fetchedAt: number; etag?: string; storeVersion: number } | undefined
  // --redis: the steps that led to what is served (lineage.ts), published and saved with it, so a
  // follower that missed some can tell a fleet that shrank in steps from a broken upstream.
  let lineage: LineageStep[] = []
  // --redis: the store's copy refused here, and why (the status says it, with the remedy).
  let refusedCopy: { version: number; at: number; message: string } | undefined
  // …and the definitions' version (hash) of that copy.
  let refusedCopyOf: string | undefined
  const lineageText = () => (lineage.length > 0 ? { lineage: JSON.stringify(lineage) } : {})
  let heldBack: StoredDocument | undefined
  // Whether the store's copy is older than the data-dir or snapshot layer served since start (layerOrder.ts).
  const olderThanLayer = (doc: StoredDocument): boolean => isOlderThanLayer(doc, { served: slot.current(), servedText, layerSince, vouchedVersion, health, now })
  const take = async (doc: StoredDocument): Promise<boolean | 'keep'> => {
    if (droppedVersion !== undefined && health.state !== 'ok' && versionOf(doc.body) === droppedVersion) {
      if (!heldBack) log.warn(`not serving the store's copy of the flags dropped after ${where} answered 401/403 (--on-upstream-unauthorized) until it answers again`)
      heldBack = doc
      return false
    }
    if (olderThanLayer(doc)) {
      const served = slot.current()!
      if (!heldBack) log.warn(`not serving the store's copy of the flags (fetched ${new Date(doc.fetchedAt).toISOString()}): the ${served.origin} served here is newer (fetched ${new Date(served.fetchedAt).toISOString()}); it is taken once ${where} is heard from again`)
      heldBack = doc
      return false
    }
    heldBack = undefined
    // The leader's clock, which may be hours ahead: a time in this relay's future counts as now
    // (else its flags would read as "just fetched", age 0, until this clock catches up).
    const result = await offer(doc.body, 'url', Math.min(doc.fetchedAt, now()), doc.etag, true, doc)
    if (result.applied || result.unchanged) takenText = doc.body
    else if (doc.version > (layerSince ?? Infinity)) newerRefused = true
    if ('refusal' in result && result.refusal.reason === 'shrink') {
      const message = `the store's copy (version ${doc.version}) is refused here: ${result.refusal.message}. Still serving the previous flags; POST /holdfast/v1/refresh with {"acceptShrink": true} on this relay serves the upstream's`
      if (refusedCopy?.version !== doc.version) log.warn(message)
      refusedCopy = { version: doc.version, at: now(), message }
      refusedCopyOf = versionOf(doc.body)
      // A copy that descends from what is served here, through steps a relay of the fleet applied,
      // is the fleet's flags: refused by this relay's stricter rule, never written over by it when
      // it leads (it would bring the flags the upstream deleted back to every relay).
      if (result.lineage && !result.lineage.ok && result.lineage.descends) return 'keep'
    }
    return result.applied || result.unchanged === true
  }
  const shared: SharedDefinitions | undefined = options.share?.({
    take,
    report: (report, version) => {
      if (report.state === 'ok') vouchedVersion = version
      reportAt = steady()
      mirror(report)
      // The leader hears from the upstream again: what was held back is current.
      if (report.state === 'ok' && heldBack) take(heldBack).catch((error: unknown) => log.error(`taking the flags held back from the store failed: ${(error as Error)?.message ?? String(error)}`))
    },
    // A new leader (or a relay cut off from the store) asks the upstream at once.
    onRole: (role) => {
      if (role !== 'follower') void poller?.now()
      else reportAt = steady()
    },
    // What the upstream (through this relay or the store) gave, never a data-dir or snapshot layer.
    held: () => loaded && { version: loaded.storeVersion, body: loaded.text, fetchedAt: loaded.fetchedAt, ...(loaded.etag === undefined ? {} : { etag: loaded.etag }) },
    published: (version) => {
      // What this relay serves is the store's copy now: a refusal of an earlier one is over.
      refusedCopy = undefined
      if (storeVersion === version) return
      storeVersion = version
      save(true)
    },
    // What the upstream (through this relay or the store) gave; a data-dir layer too when the
    // store's order says it is not older than the store's copy (a store restored from an old dump,
    // or emptied, or holding what this relay did not take as older), so a relay started in the
    // outage serves what the fleet serves. Never a snapshot: the store holds the upstream's word.
    served: () => {
      const version = slot.current()
      // An upstream answer asked for before a version this relay has taken since (asked while cut
      // off, back once it leads) is older than the store's copy: never written back over it. It is
      // about to lose to that copy (SharedDefinitions.polled); a write-back queued in between (a
      // subscription reconnecting) wrote it as a new version over the newer flags.
      const seen = shared?.asking?.().seen
      if (version?.origin === 'url' && storeVersion === undefined && storeSince !== undefined && seen !== undefined && seen > storeSince) return undefined
      const layer = version?.origin === 'data-dir' && layerSince !== undefined && !newerRefused
      return (version?.origin === 'url' || layer) && servedText !== undefined ? { text: servedText, fetchedAt: version!.fetchedAt, ...(etag === undefined ? {} : { etag }), ...lineageText() } : undefined
    },
  })
  // Closing abandons a poll in flight instead of waiting out its timeout.
  const closing = new AbortController()

  const record = (event: HealthEvent) => {
    health = reduceHealth(health, event)
    if (event.type === 'failure') {
      options.events?.refused(event.error.kind)
      const { kind, message } = event.error
      listeners.emit(kind === 'invalid' || kind === 'too-large' || kind === 'empty' || kind === 'shrink' ? { type: 'refused', reason: message, invalid: kind === 'invalid' || kind === 'too-large' } : { type: 'error', error: message })
    }
  }

  // A new version is saved at once; a re-confirmation (only fetchedAt moves) at most every 30 s, so
  // a restarted relay's age is at most that much older than the truth, and the disk is not worn
  // by a write per poll.
  let lastSaveAt = 0
  const save = (changed: boolean) => {
    const served = slot.current()
    if (!persistence || !served) return
    if (!changed && now() - lastSaveAt < RESAVE_AFTER_MS) return
    lastSaveAt = now()
    const savedEtag = etag
    const savedStoreVersion = storeVersion
    const savedSince = storeVersion === undefined ? storeSince : undefined
    const savedLineage = lineage.length > 0 ? lineage : undefined
    persistence.schedule(() => JSON.stringify({ kind: 'definitions', text: servedText ?? JSON.stringify(served.definitions), version: served.version, fetchedAt: served.fetchedAt, etag: savedEtag, storeVersion: savedStoreVersion, storeSince: savedSince, lineage: savedLineage }))
  }

  // `lineage`: for a store copy the guard refused, what its lineage says (checkLineage).
  const offer = async (text: string, origin: FlagOrigin, at: number, newEtag: string | undefined, guard = true, stored?: StoredDocument): Promise<OfferResult & { lineage?: LineageVerdict }> => {
    const fromStore = stored?.version
    const storeLineage = stored && readLineage(stored.lineage)
    // A store copy the guard refuses is taken when its lineage shows every step from what is served
    // here within this relay's own --max-shrink (the fleet shrank in steps while it was away).
    const judged: { verdict?: LineageVerdict } = {}
    const vouch = stored && ((served: FlagDefinitionsVersion, next: FlagDefinitionsVersion) => (judged.verdict = checkLineage(storeLineage, served, options.maxShrinkPercent, { flagCount: next.flagCount, dropped: droppedKeys(served, next) })))
    const result = await slot.offer(text, origin, at, { guard, vouch })
    if (result.applied || result.unchanged) {
      refusedCopy = undefined
      // Taken from the store: its history comes with it. Applied here: one step more (or none
      // after nothing; an operator's override is marked so, see docs/redis.md).
      if (stored) lineage = storeLineage ?? []
      else if (result.applied) lineage = result.previous ? extendLineage(lineage, result.previous, droppedKeys(result.previous, result.version), !guard) : []
      // A new text from the upstream has no store version until it is published.
      if (fromStore !== undefined) storeVersion = fromStore
      else if (result.applied) [storeVersion, storeSince] = [undefined, askedSince]
      droppedVersion = undefined
      heldBack = undefined
      etag = newEtag
      lastRefused = undefined
      // A copy taken from the store says nothing of the upstream: the leader's report does (a
      // relay started in an outage would otherwise say "ok", fresh, until the leader's next poll).
      if (fromStore === undefined) record({ type: 'success', at })
      if (result.applied) {
        servedText = text
        log.info(`serving definitions ${result.version.version} from ${where} (${result.version.flagCount} flags; changed: ${result.changed.join(', ') || 'none'})`)
        listeners.emit({ type: 'update', version: result.version, previous: result.previous, changed: result.changed })
      }
      save(result.applied)
      return result
    }
    // (A store copy refused for shrinking is said by `take`, with the remedy.)
    if (lastRefused?.text !== text && !(stored && result.refusal.reason === 'shrink')) log.warn(`refused ${where}: ${result.refusal.message}; ${servingWhat()}`)
    lastRefused = { text, etag: newEtag, at, message: result.refusal.message }
    record({ type: 'failure', at, error: { kind: result.refusal.reason, message: result.refusal.message } })
    return judged.verdict ? { ...result, lineage: judged.verdict } : result
  }

  // What a failure's log line says is served: never "the previous flags" a relay never had.
  const servingWhat = () => (slot.current() ? 'still serving the previous flags' : 'nothing served yet (OFREP requests get 503)')

  const toRefresh = (outcome: RefreshResult['outcome'], changed: string[]): RefreshResult => {
    const result: RefreshResult = { outcome, version: slot.current()?.version ?? null, changed }
    if (outcome === 'failed' || outcome === 'refused') {
      const error = health.lastError
      if (error) result.error = { kind: error.kind, message: error.message }
    }
    return result
  }

  /** `--on-upstream-unauthorized`: drops what is held when 401/403 has lasted as long as the policy says. */
  const clearIfPolicy = (at: number, reason: string) => {
    if (!slot.current() || !shouldClear(options.onUnauthorized, health, at)) return
    log.warn(`${where} keeps answering 401/403: dropping the flags held (--on-upstream-unauthorized ${options.onUnauthorized.mode})`)
    const version = slot.current()?.version
    droppedVersion = version
    storeVersion = undefined
    storeSince = undefined
    slot.clear()
    lineage = []
    etag = undefined
    servedText = undefined
    // Remembered in the data dir: a restart must not serve what the operator chose to drop.
    if (persistence) {
      lastSaveAt = at
      persistence.schedule(() => JSON.stringify({ kind: 'cleared', at, reason, ...(version === undefined ? {} : { version }) }))
    }
  }

  /** A follower's health is the leader's (`followReport`), and so is its `--on-upstream-unauthorized`: the credentials are the same. */
  const mirror = (report: UpstreamReport) => {
    if (report.state === 'none') return
    health = followReport(health, report, now())
    // The leader's failing spell is this relay's too: its end, taken from the store, is spread over
    // the recovery window on this relay's streams as on the leader's (ofrep/stream.ts), or every
    // browser on a follower refetches in the same instant after an outage. A refused document is
    // no outage there either (the leader's hub does not count it).
    const kind = report.lastError?.kind
    if (report.state !== 'ok' && kind !== 'invalid' && kind !== 'too-large' && kind !== 'empty' && kind !== 'shrink') {
      listeners.emit({ type: 'error', error: report.lastError?.message ?? `the leader reports ${where} ${report.state}`, reported: true })
    }
    if (report.state === 'unauthorized') clearIfPolicy(now(), report.lastError?.message ?? 'the upstream answered 401/403')
    // The leader confirmed (a 200 unchanged or a 304) what this relay serves too: it is that fresh.
    if (report.state === 'ok' && health.lastSuccessAt !== undefined && takenText !== undefined && takenText === servedText) slot.confirm(health.lastSuccessAt, 'url')
  }

  /** One poll, then (with --redis) what it gave is published for the other relays. */
  const pollAndShare = async (): Promise<RefreshResult> => {
    const asked = shared?.asking?.()
    askedSince = asked?.newest ?? asked?.seen
    const result = await poll()
    if (shared) {
      const served = slot.current()
      const ok = (result.outcome === 'applied' || result.outcome === 'unchanged') && served !== undefined && servedText !== undefined
      shared.polled(ok ? { ok: true, text: servedText!, fetchedAt: served!.fetchedAt, ...(etag === undefined ? {} : { etag }), ...lineageText() } : { ok: false }, reportOfHealth(health), asked)
      if (ok) takenText = servedText
    }
    return result
  }

  const poll = async (): Promise<RefreshResult> => {
    const result = await upstreamFetch({ url: options.url, method: 'GET', headers: options.headers, etag: slot.current() ? etag : undefined, timeoutMs: options.timeoutMs, fetch: options.fetch, signal: closing.signal })
    const at = now()
    options.events?.attempt(result.kind === 'failed' ? result.failure : result.kind)
    if (result.kind !== 'failed') notBefore = 0
    if (result.kind === 'not-modified') {
      if (!slot.current()) {
        etag = undefined
        record({ type: 'failure', at, error: { kind: 'invalid', message: `${where} answered 304 while nothing is held` } })
        return toRefresh('failed', [])
      }
      slot.confirm(at, 'url')
      record({ type: 'success', at })
      save(false)
      return toRefresh('unchanged', [])
    }
    if (result.kind === 'failed') {
      const { failure: kind, message, httpStatus } = result
      const repeated = health.lastError?.message === message
      record({ type: 'failure', at, error: httpStatus === undefined ? { kind, message } : { kind, message, httpStatus } })
      if (!repeated) log.warn(`${message}; ${servingWhat()}`)
      if (kind === 'unauthorized') clearIfPolicy(at, message)
      if ((httpStatus === 429 || httpStatus === 503) && result.retryAfterMs !== undefined) notBefore = at + Math.min(result.retryAfterMs, MAX_POLL_PAUSE_MS)
      return toRefresh('failed', [])
    }
    const offered = await offer(result.text, 'url', at, result.etag)
    if (offered.applied) return toRefresh('applied', offered.changed)
    // An operator accepted this very shrink on another relay of the fleet (a refresh behind a load
    // balancer reaches any of them): applied here too, and published as a forced step.
    const acceptance = 'refusal' in offered && offered.refusal.reason === 'shrink' ? shrinkAcceptance(result.text) : undefined
    if (acceptance !== undefined && (await shared?.takeAcceptedShrink?.(acceptance))) {
      const forced = await offer(result.text, 'url', at, result.etag, false)
      if (forced.applied) {
        log.warn(`applying ${where} although it drops more than --max-shrink: an operator accepted it on another relay of the fleet (POST /holdfast/v1/refresh {"acceptShrink": true})`)
        return toRefresh('applied', forced.changed)
      }
    }
    return toRefresh(offered.unchanged ? 'unchanged' : 'refused', [])
  }

  /** Serves the newest valid of the data dir and the snapshot (urlLayers.ts) while the upstream is asked. */
  const loadLayers = async (): Promise<void> => {
    const found = await loadUrlLayers({ slot, store: options.store, snapshotPath: options.snapshotPath, where, now, log })
    snapshotState = found.snapshot
    snapshotTorn = found.snapshotTorn === true
    if (found.droppedVersion !== undefined) droppedVersion = found.droppedVersion
    if (!found.loaded) return
    const { candidate, result } = found.loaded
    etag = candidate.etag
    servedText = candidate.text
    storeVersion = candidate.storeVersion
    storeSince = candidate.storeSince
    lineage = candidate.lineage ?? []
    layerSince = candidate.storeVersion ?? candidate.storeSince
    if (candidate.storeVersion !== undefined) loaded = { text: candidate.text, fetchedAt: candidate.fetchedAt, etag: candidate.etag, storeVersion: candidate.storeVersion }
    log.info(`serving ${result.version.flagCount} flags from the ${candidate.origin} (fetched ${new Date(candidate.fetchedAt).toISOString()}) while ${where} is asked`)
    listeners.emit({ type: 'update', version: result.version, changed: result.changed })
  }

  /**
   * A follower's "ok" is the leader's latest report, and a report ages: a leader killed (its lease
   * lasts one TTL more) or hung (its lease renewed) while the upstream is down said nothing more,
   * and its last "ok" read as fresh for a TTL and a poll timeout, or for ever. Past a poll interval,
   * a poll's timeout and a margin without a report, nothing vouches for the flags: stale.
   */
  const leaderSilent = (): boolean => reportAt !== undefined && shared?.role() === 'follower' && steady() - reportAt > options.pollIntervalMs + options.timeoutMs + REPORT_GRACE_MS
  const stale = (): boolean => {
    const served = slot.current()
    return !served || served.origin !== 'url' || health.state !== 'ok' || leaderSilent()
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
      poller = createPoller({ intervalMs: options.pollIntervalMs, poll: pollAndShare, shouldPoll: () => (allowed?.() ?? true) && now() >= notBefore })
      const first = poller.start()
      // With something to serve, start at once (well under a second) and let the first attempt
      // run; with nothing, wait for it (boundedly), so that a healthy upstream means ready on return.
      if (!slot.current()) await waitAtMost(first)
      // A torn --snapshot is only a refusal to start when nothing else has flags either.
      if (!slot.current() && snapshotTorn && snapshotState) throw nothingToServe(snapshotState, `neither the data dir nor ${where} gave flags to serve`)
    },
    current: () => slot.current(),
    subscribe: listeners.add,
    async refresh() {
      const result = await (poller ? poller.now() : pollAndShare())
      return slot.current() !== undefined && (result.outcome === 'applied' || result.outcome === 'unchanged')
    },
    status(): FlagSourceStatus {
      return sourceStatusOf(health, slot.current() !== undefined)
    },
    async close() {
      poller?.stop()
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
        upstream: upstreamStatusOf(health, where),
        refused: health.refused,
        refusedBy: health.refusedBy,
        flags: served?.flagCount ?? 0,
      }
      if (persistence) status.dataDir = persistence.state()
      if (snapshotState) status.snapshot = snapshotState
      if (shared) status.redis = refusedCopy ? { ...shared.status(), refusedCopy } : shared.status()
      return status
    },
    async refreshDetails(refreshOptions = {}) {
      const result = await (poller ? poller.now() : pollAndShare())
      // An operator who means it: apply a document the shrink guard refused (never an empty or an
      // invalid one: the slot refuses those whatever the guard says).
      if (result.outcome === 'refused' && refreshOptions.acceptShrink && lastRefused) {
        const storeCopy = refusedCopy && refusedCopyOf
        // Named before the offer, which forgets what it refused once it applies it.
        const acceptance = shrinkAcceptance(lastRefused.text)
        const forced = await offer(lastRefused.text, 'url', lastRefused.at, lastRefused.etag, false)
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

/** How many of the flags of `previous` are not in `next` (as the shrink guard counts them): a step's `d` in the lineage. */
function droppedKeys(previous: FlagDefinitionsVersion, next: FlagDefinitionsVersion): number {
  const verdict = checkShrink(previous.evaluator.getFlags().keys(), next.evaluator.getFlags(), 100)
  return verdict.ok || verdict.reason === 'shrink' ? verdict.dropped : previous.flagCount
}
