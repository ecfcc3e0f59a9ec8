// Serving flag definitions (--flags FILE, --flags-url URL, or an object in code) with last known
// good on the server side: layers loaded at start (data dir, snapshot), one source feeding new
// candidates through the guarded slot, each applied candidate saved as a new generation.
import { readFile } from 'node:fs/promises'
import type { EvaluationContext } from '@openfeature/core'
import { evaluateAll, evaluateEntry } from '../evaluate'
import type { FlagMetadata } from '../flagDefinitions'
import type { ServerLogger } from '../logger'
import { watchPath } from '../watchFile'
import type { GenerationStore } from './generations'
import { createPersistence } from './persistence'
import { createPoller, type Poller } from './poller'
import { definitionsRecordSchema, readRecord } from './records'
import { ageSeconds, notReady, type Relay, type RelayAnswer, type RefreshResult, type RelayStatus } from './relay'
import type { RelayEvents } from './relayEvents'
import { createDefinitionsSlot, type OfferResult, type ServedSource } from './servedDefinitions'
import { readSnapshotFile } from './snapshotFile'
import { redactUrl, upstreamFetch } from './upstreamFetch'
import { initialHealth, reduceHealth, shouldClear, type HealthEvent, type UnauthorizedPolicy, type UpstreamHealth } from './upstreamHealth'

/** Where definitions come from. */
export type DefinitionsSource =
  | { kind: 'file'; path: string }
  | { kind: 'url'; url: string; pollIntervalMs: number; headers?: Record<string, string> }
  | { kind: 'inline'; text: string }

/** Options of {@link createDefinitionsRelay}. */
export interface DefinitionsRelayOptions {
  source: DefinitionsSource
  store?: GenerationStore
  snapshotPath?: string
  maxShrinkPercent: number
  strict: boolean
  onUnauthorized: UnauthorizedPolicy
  timeoutMs: number
  log: ServerLogger
  events?: RelayEvents
  now?: () => number
  fetch?: typeof fetch
  filePollMs?: number
}

/** A {@link Relay} over definitions, plus the file-mode hooks `createFlagServer` exposes. */
export interface DefinitionsRelay extends Relay {
  /** Replaces the definitions from code (inline and file modes). Throws when they are refused. */
  set(text: string): void
  /** Re-reads the flags file now; resolves true when what it holds is in service. */
  reload(): Promise<boolean>
}

/** Creates the relay; nothing happens until `open()`. */
export function createDefinitionsRelay(options: DefinitionsRelayOptions): DefinitionsRelay {
  const { source, log } = options
  const now = options.now ?? Date.now
  const slot = createDefinitionsSlot({ maxShrinkPercent: options.maxShrinkPercent, strict: options.strict, warn: (m) => log.warn(m) })
  const persistence = options.store && createPersistence({ store: options.store, now, onResult: (ok, error) => {
    options.events?.saved(ok)
    if (!ok) log.error(`cannot write to the data dir ${options.store!.dir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); still serving, the previous generations stay`)
  } })
  let health: UpstreamHealth = initialHealth(source.kind === 'url')
  // The upstream's ETag of exactly what is served; never that of a refused document, or the next
  // poll's 304 would "confirm" content the relay refused.
  let etag: string | undefined
  let lastRefused: { text: string; etag?: string; at: number; message: string } | undefined
  let poller: Poller<RefreshResult> | undefined
  let stopWatching: (() => void) | undefined
  let reloading: Promise<boolean> = Promise.resolve(true)

  const record = (event: HealthEvent) => {
    health = reduceHealth(health, event)
    if (event.type === 'failure') options.events?.refused(event.error.kind)
  }

  const save = (fetchedAt: number) => {
    const served = slot.current()
    if (!persistence || !served) return
    persistence.schedule(() => JSON.stringify({ kind: 'definitions', text: served.text, version: served.version, fetchedAt, etag }))
  }

  /** Offers a candidate and does the bookkeeping every source shares. */
  const offer = (text: string, from: ServedSource, fetchedAt: number, newEtag: string | undefined, guard = true): OfferResult => {
    const result = slot.offer(text, from, fetchedAt, { guard })
    if (result.applied || result.unchanged) {
      etag = newEtag
      lastRefused = undefined
      if (source.kind === 'url') record({ type: 'success', at: fetchedAt })
      if (result.applied) {
        log.info(`serving definitions ${result.served.version} from ${describeSource()} (${result.served.flags.size} flags; changed: ${result.changed.join(', ') || 'none'})`)
        save(fetchedAt)
      }
      return result
    }
    if (result.refusal) {
      if (lastRefused?.text !== text) log.warn(`refused ${describeSource()}: ${result.refusal.message}; still serving the previous flags`)
      lastRefused = { text, etag: newEtag, at: fetchedAt, message: result.refusal.message }
      record({ type: 'failure', at: fetchedAt, error: { kind: result.refusal.reason, message: result.refusal.message } })
    }
    return result
  }

  const pollUrl = async (): Promise<RefreshResult> => {
    if (source.kind !== 'url') throw new Error('not a URL source')
    const result = await upstreamFetch({ url: source.url, method: 'GET', headers: source.headers, etag: slot.current() ? etag : undefined, timeoutMs: options.timeoutMs, fetch: options.fetch })
    const at = now()
    options.events?.attempt(result.kind === 'failed' ? result.failure : result.kind)
    if (result.kind === 'not-modified') {
      if (!slot.current()) {
        record({ type: 'failure', at, error: { kind: 'invalid', message: 'a 304 without anything held' } })
        etag = undefined
        return toRefresh('failed', [], health.lastError)
      }
      slot.confirm(at, 'upstream')
      record({ type: 'success', at })
      return toRefresh('unchanged', [])
    }
    if (result.kind === 'failed') {
      if (lastRefused === undefined || result.failure !== 'invalid') {
        const { failure: kind, message, httpStatus } = result
        record({ type: 'failure', at, error: httpStatus === undefined ? { kind, message } : { kind, message, httpStatus } })
      }
      if (result.failure === 'unauthorized') applyUnauthorizedPolicy(at)
      if (result.failure !== 'unauthorized') log.warn(`${result.message}; still serving the previous flags`)
      return toRefresh('failed', [], health.lastError)
    }
    const offered = offer(result.text, 'upstream', at, result.etag)
    if (offered.applied) return toRefresh('applied', offered.changed)
    if (offered.unchanged) return toRefresh('unchanged', [])
    return toRefresh('refused', [], health.lastError)
  }

  const applyUnauthorizedPolicy = (at: number) => {
    if (!slot.current() || !shouldClear(options.onUnauthorized, health, at)) return
    log.warn(`the upstream keeps answering 401/403: dropping the flags held (--on-upstream-unauthorized ${options.onUnauthorized.mode})`)
    slot.clear()
    etag = undefined
  }

  const toRefresh = (outcome: RefreshResult['outcome'], changed: string[], error?: { kind: string; message: string }): RefreshResult => {
    const result: RefreshResult = { outcome, version: slot.current()?.version ?? null, changed }
    if (error) result.error = { kind: error.kind, message: error.message }
    return result
  }

  const readFileSource = async (path: string): Promise<boolean> => {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      const message = `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); still serving the previous flags`
      if (health.lastError?.message !== message) log.warn(message)
      health = { ...health, lastError: { kind: 'invalid', message, at: now() } }
      return false
    }
    const at = now()
    const result = offer(text, 'file', at, undefined)
    return result.applied || result.unchanged === true
  }

  const reload = (): Promise<boolean> => {
    if (source.kind !== 'file') return Promise.resolve(slot.current() !== undefined)
    reloading = reloading.then(() => readFileSource(source.path))
    return reloading
  }

  const describeSource = () => (source.kind === 'file' ? source.path : source.kind === 'url' ? redactUrl(source.url) : 'flag definitions')

  /** Loads the newest valid of the data dir and the snapshot into the empty slot. */
  const loadLayers = async () => {
    const candidates: Array<{ text: string; fetchedAt: number; from: ServedSource; etag?: string }> = []
    if (options.store) {
      const { loaded, skipped } = await options.store.loadNewest((payload) => readRecord(definitionsRecordSchema, payload) !== undefined)
      for (const skip of skipped) log.warn(`skipped data-dir generation ${skip.path}: ${skip.reason}`)
      const record = loaded && readRecord(definitionsRecordSchema, loaded.payload)
      if (record) candidates.push({ text: record.text, fetchedAt: record.fetchedAt, from: 'data-dir', etag: record.etag })
    }
    if (options.snapshotPath) {
      const layer = await readSnapshotFile(options.snapshotPath)
      if (layer.kind !== 'definitions') throw new Error(`[holdfast-server] the snapshot ${options.snapshotPath} holds one user's values (a Bootstrap); definitions are needed without --upstream`)
      candidates.push({ text: layer.text, fetchedAt: layer.fetchedAt, from: 'snapshot' })
    }
    // Newest first; on a tie the data dir (written by this server) wins.
    candidates.sort((a, b) => b.fetchedAt - a.fetchedAt)
    for (const candidate of candidates) {
      const result = slot.offer(candidate.text, candidate.from, candidate.fetchedAt, { guard: false })
      if (result.applied) {
        etag = candidate.etag
        log.info(`serving ${result.served.flags.size} flags from the ${candidate.from} (fetched ${new Date(candidate.fetchedAt).toISOString()}) while the source is asked`)
        return
      }
      if ('refusal' in result) log.warn(`cannot serve the ${candidate.from}: ${result.refusal.message}`)
    }
  }

  const stale = (): boolean => {
    const served = slot.current()
    if (!served) return true
    if (served.source === 'data-dir' || served.source === 'snapshot') return true
    if (source.kind === 'url') return health.state !== 'ok'
    return false
  }

  const answer = (context: EvaluationContext): RelayAnswer => {
    const served = slot.current()
    if (!served) return notReady(`no flags to serve yet: ${health.lastError?.message ?? 'the source has not answered'}`, retryAfter())
    const evaluated = evaluateAll(served.core, context)
    const metadata: Record<string, unknown> & { holdfast: { source: ServedSource; fetchedAt: number; stale: boolean } } = {
      ...(evaluated.metadata as FlagMetadata | undefined),
      holdfast: { source: served.source, fetchedAt: served.fetchedAt, stale: stale() },
    }
    return { status: 200, body: { flags: evaluated.flags, metadata } }
  }

  const retryAfter = () => (source.kind === 'url' ? Math.max(1, Math.ceil(source.pollIntervalMs / 1000)) : 5)

  return {
    mode: source.kind === 'url' ? 'flags-url' : source.kind,
    async open() {
      await loadLayers()
      if (source.kind === 'inline') {
        const result = offer(source.text, 'file', now(), undefined)
        if (!result.applied && !result.unchanged) throw new Error(`[holdfast-server] invalid flag definitions: ${result.refusal.message}`)
        return
      }
      if (source.kind === 'file') {
        const held = slot.current() !== undefined
        const ok = await readFileSource(source.path)
        if (!ok && !held) {
          const message = lastRefused?.message ?? health.lastError?.message ?? 'unreadable'
          if (/^cannot read/.test(message)) throw new Error(`[holdfast-server] cannot read the flags file ${message.replace(/^cannot read /, '').replace(/; still serving.*$/, '')}`)
          throw new Error(`[holdfast-server] ${source.path} is invalid: ${message}`)
        }
        stopWatching = watchPath(source.path, () => void reload(), { pollMs: options.filePollMs })
        // An edit between the read above and the watch starting raised no signal; look once more.
        void reload()
        return
      }
      poller = createPoller({ intervalMs: source.pollIntervalMs, poll: pollUrl })
      const first = poller.start()
      // With something to serve, start at once (well under a second) and let the first attempt run;
      // with nothing, wait for that attempt, so a healthy upstream means ready on return.
      if (!slot.current()) await first
    },
    bulk: (context) => answer(context),
    single(key, context) {
      const served = slot.current()
      if (!served) return notReady('no flags to serve yet', retryAfter())
      return evaluateEntry(served.core, key, context)
    },
    ready: () => slot.current() !== undefined,
    status(): RelayStatus {
      const served = slot.current()
      const at = now()
      const status: RelayStatus = {
        ready: served !== undefined,
        mode: source.kind === 'url' ? 'flags-url' : source.kind,
        source: served?.source ?? 'none',
        version: served?.version ?? null,
        fetchedAt: served?.fetchedAt ?? null,
        ageSeconds: ageSeconds(served?.fetchedAt, at),
        stale: stale(),
        upstream: { state: health.state },
        refused: health.refused,
        refusedBy: health.refusedBy,
        flags: served?.flags.size ?? 0,
      }
      if (source.kind === 'url') status.upstream.url = redactUrl(source.url)
      if (health.lastSuccessAt !== undefined) status.upstream.lastSuccessAt = health.lastSuccessAt
      if (health.lastAttemptAt !== undefined) status.upstream.lastAttemptAt = health.lastAttemptAt
      if (health.lastError) status.upstream.lastError = health.lastError
      if (persistence) status.dataDir = persistence.state()
      return status
    },
    async refresh(refreshOptions = {}) {
      if (source.kind === 'file') {
        const before = slot.current()?.flags
        const ok = await reload()
        const after = slot.current()
        const changed = after && before !== after.flags ? [...after.flags.keys()].filter((k) => before?.get(k) !== after.flags.get(k)) : []
        return toRefresh(ok ? (changed.length ? 'applied' : 'unchanged') : 'refused', changed, ok ? undefined : health.lastError)
      }
      if (!poller) return toRefresh('unchanged', [])
      const result = await poller.now()
      // An operator who means it: apply a document the shrink guard refused (never an empty or
      // invalid one, which the slot refuses regardless).
      if (result.outcome === 'refused' && refreshOptions.acceptShrink && lastRefused) {
        const forced = offer(lastRefused.text, 'upstream', lastRefused.at, lastRefused.etag, false)
        if (forced.applied) return toRefresh('applied', forced.changed)
      }
      return result
    },
    set(text) {
      // Code states its intent: no shrink guard (an empty or invalid set is still refused).
      const result = offer(text, 'file', now(), undefined, false)
      if (!result.applied && !result.unchanged) throw new Error(`[holdfast-server] invalid flag definitions: ${result.refusal.message}`)
    },
    reload,
    async close() {
      poller?.stop()
      stopWatching?.()
      stopWatching = undefined
      await persistence?.flush()
    },
  }
}
