// --flags FILE with --data-dir / --snapshot: the file stays the source of truth, and the layers
// only matter when it cannot be read or is invalid at start (a volume not mounted yet, a broken
// deploy). Then the newest valid layer is served, marked stale, while the file is retried; every
// definitions version the file puts in service is saved as a data-dir generation.
import type { ServerLogger } from '../logger'
import { createListeners, type FlagDefinitionsVersion, type FlagSource, type FlagSourceEvent } from './flagSource'
import type { GenerationStore } from './generations'
import { createPersistence, loadNewestPayload } from './persistence'
import { definitionsRecordSchema, readRecord } from './records'
import type { RelayEvents } from './relayEvents'
import { createDefinitionsSlot } from './servedDefinitions'
import { readSnapshotFile } from './snapshotFile'

/** How often a file that could not be opened at start is tried again: every 2 s. */
export const FILE_RETRY_MS = 2000

/** Wraps `inner` (a file source) with data-dir and snapshot layers; see the file comment. */
export function createPersistedSource(
  inner: FlagSource,
  options: { store?: GenerationStore; snapshotPath?: string; strict: boolean; log: ServerLogger; events?: RelayEvents; now?: () => number },
): FlagSource {
  const now = options.now ?? Date.now
  const listeners = createListeners<FlagSourceEvent>()
  const layer = createDefinitionsSlot({ maxShrinkPercent: 100, strict: options.strict })
  const persistence = options.store && createPersistence({
    store: options.store,
    now,
    onResult: (ok, error) => {
      options.events?.saved(ok)
      if (!ok) options.log.error(`cannot write to the data dir ${options.store!.dir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); still serving`)
    },
  })
  let innerOpen = false
  let retry: ReturnType<typeof setInterval> | undefined
  let closed = false

  const save = (version: FlagDefinitionsVersion) =>
    persistence?.schedule(() => JSON.stringify({ kind: 'definitions', text: JSON.stringify(version.definitions), version: version.version, fetchedAt: version.fetchedAt }))
  const unsubscribe = inner.subscribe((event) => {
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
    if (options.snapshotPath) {
      const snapshot = await readSnapshotFile(options.snapshotPath)
      if (snapshot.kind !== 'definitions') throw new Error(`[holdfast-server] the snapshot ${options.snapshotPath} holds one user's values (a Bootstrap); --flags needs definitions (holdfast-server snapshot --flags …)`)
      candidates.push({ text: snapshot.text, fetchedAt: snapshot.fetchedAt, origin: 'snapshot' })
    }
    // A file dated ahead of this clock was not fetched later than now (see urlSource.ts).
    const at = now()
    for (const candidate of candidates) candidate.fetchedAt = Math.min(candidate.fetchedAt, at)
    candidates.sort((a, b) => b.fetchedAt - a.fetchedAt)
    for (const candidate of candidates) {
      const result = await layer.offer(candidate.text, candidate.origin, candidate.fetchedAt, { guard: false })
      if (result.applied) return
      if ('refusal' in result) {
        options.log.warn(`cannot serve the ${candidate.origin}: ${result.refusal.message}`)
        // An intact generation that is not servable here (saved by a --lenient run or another
        // version, repaired by hand): the generation before it may well be.
        if (candidate.origin === 'data-dir') {
          unusable.add(candidate.text)
          return loadLayers(unusable)
        }
      }
    }
  }

  const tryOpen = async (): Promise<boolean> => {
    try {
      await inner.open()
      innerOpen = true
      return true
    } catch (error) {
      if (!layer.current()) throw error
      options.log.warn(`${(error as Error).message.replace(/^\[holdfast-server\] /, '')}; serving the ${layer.current()!.origin} (stale) and trying again every ${FILE_RETRY_MS / 1000} s`)
      return false
    }
  }

  const source: FlagSource & { set?: unknown } = {
    origin: inner.origin,
    async open() {
      await loadLayers()
      if (await tryOpen()) {
        const current = inner.current()
        if (current) save(current)
        return
      }
      const layerVersion = layer.current()!
      listeners.emit({ type: 'update', version: layerVersion, changed: [...layerVersion.evaluator.getFlags().keys()] })
      retry = setInterval(() => {
        if (closed || innerOpen) return
        inner.open().then(
          () => {
            innerOpen = true
            clearInterval(retry)
            const current = inner.current()
            if (current) {
              options.log.info('the flags file is readable again; serving it')
              save(current)
              listeners.emit({ type: 'update', version: current, previous: layerVersion, changed: [...current.evaluator.getFlags().keys()] })
            }
          },
          () => {},
        )
      }, FILE_RETRY_MS)
      retry.unref?.()
    },
    current: () => inner.current() ?? layer.current(),
    subscribe: listeners.add,
    refresh: () => (innerOpen ? inner.refresh() : Promise.resolve(false)),
    status() {
      const status = inner.status()
      return innerOpen ? status : { ...status, ready: layer.current() !== undefined, state: 'failing' }
    },
    async close() {
      closed = true
      clearInterval(retry)
      unsubscribe()
      await inner.close()
      await persistence?.flush()
    },
  }
  // setFlags() keeps working on a wrapped file source.
  if ('set' in inner) source.set = (inner as { set: unknown }).set
  return source
}
