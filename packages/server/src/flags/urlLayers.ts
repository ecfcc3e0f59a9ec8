// --flags-url: the layers loaded at start, before the upstream is asked: the newest valid of the
// data dir's generations and the `--snapshot` file, offered to the empty slot. A data-dir record
// of a clear (`--on-upstream-unauthorized`) keeps what is older than it out.
import type { ServerLogger } from '../logger'
import type { GenerationStore } from './generations'
import type { LineageStep } from './lineage'
import { loadNewestPayload } from './persistence'
import { definitionsOrClearedSchema, readRecord } from './records'
import { offerNewestLayer, type DefinitionsSlot, type OfferResult } from './servedDefinitions'
import { loadSnapshotLayer, unusableSnapshot, type SnapshotState } from './snapshotFile'

/** A layer that may be served at start, with what the data dir knew of the store's order. */
export interface UrlLayer {
  text: string
  fetchedAt: number
  origin: 'data-dir' | 'snapshot'
  etag?: string
  /** `--redis`: the store's version of this text (taken from it, or published to it). */
  storeVersion?: number
  /** `--redis`: for a text polled here before it had a store version, the newest store version seen when it was asked for. */
  storeSince?: number
  /** `--redis`: the steps that led to this text (lineage.ts). */
  lineage?: LineageStep[]
}

/** What {@link loadUrlLayers} found. */
export interface LoadedLayers {
  /** The layer now in the slot, and the slot's result. Undefined: none could be served. */
  loaded?: { candidate: UrlLayer; result: Extract<OfferResult, { applied: true }> }
  /** The version the data dir records as dropped after an upstream 401/403. */
  droppedVersion?: string
  /** With a `--snapshot`: whether it could be used. */
  snapshot?: SnapshotState
  /**
   * The snapshot could not even be read as one (torn, not JSON): with nothing else to serve the
   * relay refuses to start, as it always did. One read but refused (invalid, no flags) leaves it not
   * ready (503) instead, as before.
   */
  snapshotTorn?: boolean
}

/** Options of {@link loadUrlLayers}. */
export interface UrlLayersOptions {
  slot: DefinitionsSlot
  /** The data dir's generation store. Default: none. */
  store?: GenerationStore
  /** Absolute path of a `--snapshot` file. Default: none. */
  snapshotPath?: string
  /** The upstream as logs name it (redacted). */
  where: string
  now: () => number
  log: ServerLogger
}

/** The `--snapshot` as read at start, kept across the reloads of {@link loadUrlLayers}. */
type SnapshotRead = Awaited<ReturnType<typeof loadSnapshotLayer>> & { torn?: boolean }

/**
 * Loads the newest valid of the data dir and the snapshot into the empty slot. `unusable`: the
 * texts of generations already refused here, so the one before each is tried; `read`: the snapshot
 * as read by the first pass (read once, and said once when it cannot be used).
 */
export async function loadUrlLayers(options: UrlLayersOptions, unusable = new Set<string>(), read?: SnapshotRead): Promise<LoadedLayers> {
  const { log, where } = options
  const candidates: UrlLayer[] = []
  /** When the newest data-dir generation says the definitions were cleared (an upstream 401/403). */
  let clearedAt: number | undefined
  let droppedVersion: string | undefined
  if (options.store) {
    const payload = await loadNewestPayload(options.store, (text) => {
      const record = readRecord(definitionsOrClearedSchema, text)
      return record !== undefined && !(record.kind === 'definitions' && unusable.has(record.text))
    }, log)
    const saved = payload === undefined ? undefined : readRecord(definitionsOrClearedSchema, payload)
    if (saved?.kind === 'definitions') candidates.push({ text: saved.text, fetchedAt: saved.fetchedAt, origin: 'data-dir', etag: saved.etag, storeVersion: saved.storeVersion, storeSince: saved.storeSince, lineage: saved.lineage as LineageStep[] | undefined })
    else if (saved?.kind === 'cleared') {
      clearedAt = saved.at
      droppedVersion = saved.version
      log.warn(`the data dir records that the flags were dropped at ${new Date(saved.at).toISOString()} (${saved.reason}; --on-upstream-unauthorized): nothing older is served until ${where} answers`)
    }
  }
  const path = options.snapshotPath
  if (path !== undefined && !read) {
    const first = await loadSnapshotLayer(path, log, options.now())
    read = { ...first, torn: !first.state.usable }
    if (first.layer && first.layer.kind !== 'definitions') throw new Error(`[holdfast-server] the snapshot ${path} holds one user's values (a Bootstrap); --flags-url needs definitions (holdfast-server snapshot --flags-url …)`)
  }
  const layer = read?.layer?.kind === 'definitions' ? read.layer : undefined
  // A snapshot taken before the clear holds what the operator chose to drop.
  if (layer && (clearedAt === undefined || layer.fetchedAt > clearedAt)) candidates.push({ text: layer.text, fetchedAt: layer.fetchedAt, origin: 'snapshot' })
  // Newest first; on a tie the data dir (written by this server, listed first) wins.
  const offered = await offerNewestLayer(options.slot, candidates, options.now(), log, (message) => {
    // Read, but its definitions cannot be served (invalid, no flags): reported as unusable too.
    read = { ...unusableSnapshot(path!, `the snapshot ${path} cannot be served: ${message}`, log), torn: false }
  })
  if (offered && 'unusable' in offered) {
    // (Only a data-dir generation is unusable, so this load read no record of a clear.)
    unusable.add(offered.unusable)
    return loadUrlLayers(options, unusable, read)
  }
  return { ...(offered ? { loaded: offered } : {}), ...(droppedVersion === undefined ? {} : { droppedVersion }), ...(read ? { snapshot: read.state, snapshotTorn: read.torn === true } : {}) }
}
