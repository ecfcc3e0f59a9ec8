// --flags FILE with --data-dir / --snapshot: the file stays the source of truth, and the layers
// only matter when it cannot be read, is invalid, or is emptied or gutted at start (a volume not
// mounted yet, a broken deploy). Then the newest valid layer is served, marked stale, while the
// file is retried (or, once readable, until an edit passes the guard against the layer); every
// definitions version the file puts in service is saved as a data-dir generation.
import type { ServerLogger } from '../logger'
import { createListeners, type FlagDefinitionsVersion, type FlagSource, type FlagSourceEvent } from './flagSource'
import type { GenerationStore } from './generations'
import { changedKeys, refusalReason } from './guard'
import { closePersistence, createPersistence, loadNewestPayload, type PersistenceState } from './persistence'
import { definitionsRecordSchema, readRecord } from './records'
import type { RelayEvents } from './relayEvents'
import { createDefinitionsSlot, offerNewestLayer } from './servedDefinitions'
import { loadSnapshotLayer, nothingToServe, unusableSnapshot, type SnapshotLayer, type SnapshotState } from './snapshotFile'

/** How often a file that could not be opened at start is tried again: every 2 s. */
export const FILE_RETRY_MS = 2000

/** A file source with layers: its data-dir writer's state is part of the status (see `statusOf`). */
export interface PersistedSource extends FlagSource {
  /** The data-dir writer's state; undefined without a data dir. */
  dataDirState(): PersistenceState | undefined
  /** Whether the `--snapshot` could be used; undefined without one. */
  snapshotState(): SnapshotState | undefined
}

/** Wraps `inner` (a file source) with data-dir and snapshot layers; see the file comment. */
export function createPersistedSource(
  inner: FlagSource,
  options: {
    store?: GenerationStore
    snapshotPath?: string
    strict: boolean
    log: ServerLogger
    /** The file, for messages. */
    name?: string
    /** The file's first document may drop at most this share of a layer's flags. Default 50. */
    maxShrinkPercent?: number
    events?: RelayEvents
    now?: () => number
  },
): PersistedSource {
  const now = options.now ?? Date.now
  const listeners = createListeners<FlagSourceEvent>()
  const layer = createDefinitionsSlot({ maxShrinkPercent: 100, strict: options.strict })
  const persistence = options.store && createPersistence({
    store: options.store,
    now,
    log: options.log,
    onResult: (ok) => options.events?.saved(ok),
  })
  let innerOpen = false
  // Whether the file's definitions are served. The file source takes its first document unguarded
  // (it holds nothing to protect), so that document must pass the guard against the layer here:
  // an emptied file at a restart must not replace the flags the data dir kept (CONTRACT §9).
  let trusted = false
  let servingLayer = false
  let refused = 0
  let lastRefusal: string | undefined
  let retry: ReturnType<typeof setInterval> | undefined
  let closed = false
  // `--snapshot`, read once at start: whether it could be used (a torn one is reported, not served).
  let snapshotState: SnapshotState | undefined
  let snapshotLayer: Extract<SnapshotLayer, { kind: 'definitions' }> | undefined
  // Not even readable as a snapshot (torn): with nothing else, the start is refused, as it always was.
  let snapshotTorn = false

  const save = (version: FlagDefinitionsVersion) =>
    persistence?.schedule(() => JSON.stringify({ kind: 'definitions', text: JSON.stringify(version.definitions), version: version.version, fetchedAt: version.fetchedAt }))
  const unsubscribe = inner.subscribe((event) => {
    if (event.type === 'update' && !trusted) {
      const held = layer.current()
      const refusal = held && refusalReason(held, event.version, { maxShrinkPercent: options.maxShrinkPercent })
      if (refusal) {
        refused++
        lastRefusal = `${options.name ?? 'the flags file'} is refused, still serving the ${held.origin} (stale): ${refusal}`
        options.log.warn(lastRefusal)
        listeners.emit({ type: 'refused', reason: lastRefusal, invalid: false })
        return
      }
      trusted = true
      lastRefusal = undefined
      if (servingLayer && held) {
        options.log.info(`${options.name ?? 'the flags file'} is served again`)
        save(event.version)
        listeners.emit({ type: 'update', version: event.version, previous: held, changed: changedKeys(held, event.version) })
        return
      }
    }
    if (event.type === 'update') save(event.version)
    listeners.emit(event)
  })

  // `unusable`: the texts of generations already refused here, so the one before each is tried.
  const loadLayers = async (unusable = new Set<string>()): Promise<void> => {
    const candidates: Array<{ text: string; fetchedAt: number; origin: 'data-dir' | 'snapshot' }> = []
    if (options.store) {
      const payload = await loadNewestPayload(options.store, (text) => {
        const record = readRecord(definitionsRecordSchema, text)
        return record !== undefined && !unusable.has(record.text)
      }, options.log)
      const saved = payload === undefined ? undefined : readRecord(definitionsRecordSchema, payload)
      if (saved) candidates.push({ text: saved.text, fetchedAt: saved.fetchedAt, origin: 'data-dir' })
    }
    // Read once: a data-dir generation found unusable below loads the layers again.
    if (options.snapshotPath && !snapshotState) {
      const read = await loadSnapshotLayer(options.snapshotPath, options.log, now())
      snapshotState = read.state
      snapshotTorn = !read.state.usable
      if (read.layer && read.layer.kind !== 'definitions') throw new Error(`[holdfast-server] the snapshot ${options.snapshotPath} holds one user's values (a Bootstrap); --flags needs definitions (holdfast-server snapshot --flags …)`)
      snapshotLayer = read.layer
    }
    if (snapshotLayer) candidates.push({ text: snapshotLayer.text, fetchedAt: snapshotLayer.fetchedAt, origin: 'snapshot' })
    const offered = await offerNewestLayer(layer, candidates, now(), options.log, (message) => {
      // Read, but its definitions cannot be served (invalid, no flags): unusable like a torn file.
      snapshotState = unusableSnapshot(options.snapshotPath!, `the snapshot ${options.snapshotPath} cannot be served: ${message}`, options.log).state
      snapshotLayer = undefined
    })
    if (offered && 'unusable' in offered) {
      unusable.add(offered.unusable)
      return loadLayers(unusable)
    }
  }

  const tryOpen = async (): Promise<boolean> => {
    try {
      await inner.open()
      innerOpen = true
      return true
    } catch (error) {
      // A torn --snapshot is only a refusal to start when nothing else has flags either.
      if (!layer.current() && snapshotState?.usable === false && snapshotTorn) throw nothingToServe(snapshotState, (error as Error).message.replace(/^\[holdfast-server\] /, ''))
      if (!layer.current()) throw error
      options.log.warn(`${(error as Error).message.replace(/^\[holdfast-server\] /, '')}; serving the ${layer.current()!.origin} (stale) and trying again every ${FILE_RETRY_MS / 1000} s`)
      return false
    }
  }

  const source: PersistedSource & { set?: unknown } = {
    origin: inner.origin,
    async open() {
      await loadLayers()
      // Opened and passed the guard: the file is served. Opened but refused: the layer is served
      // until an edit passes (the file source watches it).
      if ((await tryOpen()) && trusted) return
      const layerVersion = layer.current()
      // Opened, but the file defines no flags and no layer has any: not ready until an edit gives
      // the file flags (its source watches it; that document is trusted with nothing to guard).
      if (!layerVersion) return
      // The file refused its own first document (zero flags; it guards nothing else): say what is served instead.
      if (innerOpen && !inner.current()) {
        lastRefusal = `${options.name ?? 'the flags file'} is refused, still serving the ${layerVersion.origin} (stale): it defines no flags while ${layerVersion.flagCount} are being served`
        options.log.warn(lastRefusal)
      }
      servingLayer = true
      listeners.emit({ type: 'update', version: layerVersion, changed: [...layerVersion.evaluator.getFlags().keys()] })
      if (innerOpen) return
      retry = setInterval(() => {
        if (closed || innerOpen) return
        // Its first document goes through the guard in the listener above, which says what it did.
        inner.open().then(
          () => {
            innerOpen = true
            clearInterval(retry)
          },
          () => {},
        )
      }, FILE_RETRY_MS)
      retry.unref?.()
    },
    current: () => (trusted ? inner.current() : undefined) ?? layer.current(),
    subscribe: listeners.add,
    refresh: () => (innerOpen ? inner.refresh().then((ok) => ok && trusted) : Promise.resolve(false)),
    status() {
      const status = { ...inner.status(), refused: inner.status().refused + refused }
      if (innerOpen && trusted) return status
      return { ...status, ready: layer.current() !== undefined, state: 'failing', ...(lastRefusal ? { lastError: lastRefusal } : {}) }
    },
    dataDirState: () => persistence?.state(),
    snapshotState: () => snapshotState,
    async close() {
      closed = true
      clearInterval(retry)
      unsubscribe()
      await inner.close()
      await closePersistence(persistence, options.log)
    },
  }
  // setFlags() keeps working on a wrapped file source; code is trusted (no guard).
  if ('set' in inner) {
    const set = (inner as { set: (definitions: unknown) => void }).set
    source.set = (definitions: unknown) => {
      const wasTrusted = trusted
      trusted = true
      try {
        set(definitions)
      } catch (error) {
        trusted = wasTrusted
        throw error
      }
    }
  }
  return source
}
