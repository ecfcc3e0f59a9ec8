// --redis for a --flags-url source: the hooks the shared store's driver is given (take the store's
// copy, unless it is a dropped version or older than the layer served; the leader's reports; the
// role; what is held, served and published) and the follower's mirror of the leader's health.
import type { SharedDefinitions } from '../store/sharedDefinitions'
import type { UpstreamReport } from '../store/upstreamReport'
import type { StoredDocument } from '../store/sharedStore'
import { versionOf } from './flagDefinitions'
import type { FlagSourceEvent } from './flagSource'
import { isOlderThanLayer } from './layerOrder'
import type { DefinitionsSlot } from './servedDefinitions'
import { followReport } from './upstreamHealth'
import type { UrlServing } from './urlServing'
import type { UrlSourceOptions } from './urlSourceOptions'
import { lineageText, type UrlSourceState } from './urlSourceState'

/** What {@link shareUrlDefinitions} works on: the source's options, shared state, slot and serving, and its clocks. */
export interface UrlSharingDeps {
  options: UrlSourceOptions
  state: UrlSourceState
  slot: DefinitionsSlot
  serving: Pick<UrlServing, 'offer' | 'save' | 'clearIfPolicy'>
  emit: (event: FlagSourceEvent) => void
  /** The upstream's URL as the log says it (redacted). */
  where: string
  now: () => number
  /** This relay's steady clock (steadyClock.ts), the one the source reads a report's age on. */
  steady: () => number
}

/** `--redis`: gives `options.share` this source's hooks and returns the shared store's driver; undefined without `share`. */
export function shareUrlDefinitions({ options, state, slot, serving, emit, where, now, steady }: UrlSharingDeps): SharedDefinitions | undefined {
  const { log } = options
  const { offer, save, clearIfPolicy } = serving
  // The store version of the leader's latest report of a good poll (see `olderThanLayer`).
  let vouchedVersion: number | undefined
  // A store copy newer than the layer was refused here (the guard): the layer is not written over it.
  let newerRefused = false
  // Whether the store's copy is older than the data-dir or snapshot layer served since start (layerOrder.ts).
  const olderThanLayer = (doc: StoredDocument): boolean => isOlderThanLayer(doc, { served: slot.current(), servedText: state.servedText, layerSince: state.layerSince, vouchedVersion, health: state.health, now })
  const take = async (doc: StoredDocument): Promise<boolean | 'keep'> => {
    if (state.droppedVersion !== undefined && state.health.state !== 'ok' && versionOf(doc.body) === state.droppedVersion) {
      if (!state.heldBack) log.warn(`not serving the store's copy of the flags dropped after ${where} answered 401/403 (--on-upstream-unauthorized) until it answers again`)
      state.heldBack = doc
      return false
    }
    if (olderThanLayer(doc)) {
      const served = slot.current()!
      if (!state.heldBack) log.warn(`not serving the store's copy of the flags (fetched ${new Date(doc.fetchedAt).toISOString()}): the ${served.origin} served here is newer (fetched ${new Date(served.fetchedAt).toISOString()}); it is taken once ${where} is heard from again`)
      state.heldBack = doc
      return false
    }
    state.heldBack = undefined
    // The leader's clock, which may be hours ahead: a time in this relay's future counts as now
    // (else its flags would read as "just fetched", age 0, until this clock catches up).
    const result = await offer(doc.body, 'url', Math.min(doc.fetchedAt, now()), doc.etag, true, doc)
    if (result.applied || result.unchanged) state.takenText = doc.body
    else if (doc.version > (state.layerSince ?? Infinity)) newerRefused = true
    if ('refusal' in result && result.refusal.reason === 'shrink') {
      const message = `the store's copy (version ${doc.version}) is refused here: ${result.refusal.message}. Still serving the previous flags; POST /holdfast/v1/refresh with {"acceptShrink": true} on this relay serves the upstream's`
      if (state.refusedCopy?.version !== doc.version) log.warn(message)
      state.refusedCopy = { version: doc.version, at: now(), message }
      state.refusedCopyOf = versionOf(doc.body)
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
      state.reportAt = steady()
      mirror(report)
      // The leader hears from the upstream again: what was held back is current.
      if (report.state === 'ok' && state.heldBack) take(state.heldBack).catch((error: unknown) => log.error(`taking the flags held back from the store failed: ${(error as Error)?.message ?? String(error)}`))
    },
    // A new leader (or a relay cut off from the store) asks the upstream at once.
    onRole: (role) => {
      if (role !== 'follower') void state.poller?.now()
      else state.reportAt = steady()
    },
    // What the upstream (through this relay or the store) gave, never a data-dir or snapshot layer.
    held: () => state.loaded && { version: state.loaded.storeVersion, body: state.loaded.text, fetchedAt: state.loaded.fetchedAt, ...(state.loaded.etag === undefined ? {} : { etag: state.loaded.etag }) },
    published: (version) => {
      // What this relay serves is the store's copy now: a refusal of an earlier one is over.
      state.refusedCopy = undefined
      if (state.storeVersion === version) return
      state.storeVersion = version
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
      if (version?.origin === 'url' && state.storeVersion === undefined && state.storeSince !== undefined && seen !== undefined && seen > state.storeSince) return undefined
      const layer = version?.origin === 'data-dir' && state.layerSince !== undefined && !newerRefused
      return (version?.origin === 'url' || layer) && state.servedText !== undefined ? { text: state.servedText, fetchedAt: version!.fetchedAt, ...(state.etag === undefined ? {} : { etag: state.etag }), ...lineageText(state) } : undefined
    },
  })

  /** A follower's health is the leader's (`followReport`), and so is its `--on-upstream-unauthorized`: the credentials are the same. */
  const mirror = (report: UpstreamReport) => {
    if (report.state === 'none') return
    state.health = followReport(state.health, report, now())
    // The leader's failing spell is this relay's too: its end, taken from the store, is spread over
    // the recovery window on this relay's streams as on the leader's (ofrep/stream.ts), or every
    // browser on a follower refetches in the same instant after an outage. A refused document is
    // no outage there either (the leader's hub does not count it).
    const kind = report.lastError?.kind
    if (report.state !== 'ok' && kind !== 'invalid' && kind !== 'too-large' && kind !== 'empty' && kind !== 'shrink') {
      emit({ type: 'error', error: report.lastError?.message ?? `the leader reports ${where} ${report.state}`, reported: true })
    }
    if (report.state === 'unauthorized') clearIfPolicy(now(), report.lastError?.message ?? 'the upstream answered 401/403')
    // The leader confirmed (a 200 unchanged or a 304) what this relay serves too: it is that fresh.
    if (report.state === 'ok' && state.health.lastSuccessAt !== undefined && state.takenText !== undefined && state.takenText === state.servedText) slot.confirm(state.health.lastSuccessAt, 'url')
  }

  return shared
}
