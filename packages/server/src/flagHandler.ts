import { resolve } from 'node:path'
import { createDemoControls } from './demo/demoControls'
import type { OutageState } from './demo/outage'
import type { ForwardingStats } from './events/forwardingStats'
import { createEventsPipeline } from './events/pipeline'
import { handleEvents, refuseEvents } from './events/routes'
import type { ReceivedEvent } from './events/schema'
import { createFileSource, createStaticSource, type EditableFlagSource } from './flags/fileSource'
import type { FlagdDefinitions } from './flags/flagDefinitions'
import type { FlagSource } from './flags/flagSource'
import { createLoadShedder } from './http/loadShedder'
import { createOpsRoutes } from './http/opsRoutes'
import { createRelayRoutes } from './http/relayRoutes'
import { createDataDirStore, createRelaySource, DEFAULT_POLL_INTERVAL_SECONDS, wantsRelay } from './flags/relayOptions'
import { isRelaySource, servedSourceOf, statusOf } from './flags/relay'
import { registerRelayMetrics } from './flags/relayMetrics'
import type { GenerationStore } from './flags/generations'
import { createPersistedSource } from './flags/persistedSource'
import { lockDataDirWithin } from './flags/persistence'
import { createRequestListener, type RequestListener, type Route } from './http/requestHandler'
import { consoleLogger, prefixLogger, type ServerLogger } from './logger'
import { createServerMetrics, type ServerMetrics } from './metrics'
import { createAnswerCache } from './ofrep/answerCache'
import { handleBulkEvaluation, handleFlagEvaluation, refuseNotJson } from './ofrep/ofrepRoutes'
import { createCatchUp } from './ofrep/catchUp'
import { openStreamHub } from './ofrep/stream'
import { STREAM_PATH, type StreamHub } from './ofrep/streamHub'
import { registerStreamMetrics } from './ofrep/streamMetrics'
import { evaluationRequestLimits, readHandlerOptions } from './options'
import { HANDLER_OPTION_KEYS, refuseOpenByMistake, sayUnknownOptions, type OptionKeys } from './unknownOptions'
import type { FlagHandlerOptions } from './flagHandlerOptions'

export type { FlagHandlerOptions } from './flagHandlerOptions'

/**
 * The Holdfast request handler, mountable in any Node HTTP server: call it with Node's `req` and
 * `res` (`http.createServer(handler)`, Express `app.use('/flags', handler)`, Fastify with
 * `reply.hijack()` and `handler(request.raw, reply.raw)`, a Next.js pages API route). With a
 * `next` argument (Express style), unknown paths are passed on instead of answered 404.
 */
export interface FlagHandler extends RequestListener {
  /** The source of the definitions being served. */
  source: FlagSource
  /** The Prometheus metrics (`GET /metrics`); add your own to `metrics.registry`. */
  metrics: ServerMetrics
  /**
   * The most recent accepted events (at most 1,000), oldest first, including those read back from
   * `eventsFile` (or the spool) on start. Not a history: the file is the record.
   */
  events(): ReceivedEvent[]
  /** With `eventsUpstream`: the spool and the forwarder's state (pending, oldest age, delivered, dropped, last error). */
  eventsForwarding?(): ForwardingStats
  /** Forgets every event (and empties `eventsFile`, or discards the undelivered spool). */
  resetEvents(): Promise<void>
  /** Replaces the flag definitions in code. Throws on invalid definitions, keeping the old ones. Only for `flags` (not a custom `source`). */
  setFlags(definitions: FlagdDefinitions): void
  /** Re-reads the flags (file or other source) now instead of waiting; resolves true if the latest attempt succeeded. */
  reloadFlags(): Promise<boolean>
  /** The simulated outage; undefined without `demoControls`. */
  outage?: {
    /** The outage being simulated now. */
    get(): OutageState
    /** Changes part of the simulated outage; returns the whole new state. */
    set(change: Partial<OutageState>): OutageState
  }
  /** The event stream's hub (open streams, notices sent); undefined with `liveUpdates: false`. */
  stream?: StreamHub
  /** Starts refusing new requests (503 `Connection: close`, `/readyz` 503) while in-flight ones finish. */
  drain(): void
  /** Drains, then stops the source, the timers and the events sink. Idempotent. */
  close(): Promise<void>
}

/**
 * Creates the Holdfast request handler: loads the flags (rejecting when the initial flags are
 * missing or invalid, or an option is), opens the events sink, and resolves with a
 * {@link FlagHandler}. `createFlagServer` is this plus a `node:http` server. An option key it
 * does not take, nested ones included, is logged once (`unknown option redis.namesapce (did you
 * mean redis.namespace?)`) and ignored, so a spread config object still starts.
 */
export async function createFlagHandler(options: FlagHandlerOptions): Promise<FlagHandler> {
  return openFlagHandler(options, HANDLER_OPTION_KEYS)
}

/** {@link createFlagHandler}, saying which keys of `options` are not among `known` (createFlagServer's take its listening ones too). */
export async function openFlagHandler(options: FlagHandlerOptions, known: OptionKeys): Promise<FlagHandler> {
  const log = prefixLogger(options?.logger ?? consoleLogger)
  if (typeof options === 'object' && options !== null) {
    refuseOpenByMistake(options, sayUnknownOptions(options, known, log))
  }
  const config = readHandlerOptions(options)
  const metrics = options.metrics ?? createServerMetrics()
  const limits = evaluationRequestLimits(config.limits)
  // The data dir's store, shared by the lock below and the source: a lock that does not answer in
  // time (a hung mount) leaves the store unused (flags/persistence.ts, lockDataDirWithin).
  const dataDirStore = options.dataDir === undefined || options.source !== undefined ? undefined : createDataDirStore(options.dataDir, options)
  const source: FlagSource =
    options.source ??
    (wantsRelay(options)
      ? createRelaySource({ ...options, strictValidation: config.strictValidation, maxShrinkPercent: config.maxShrinkPercent, log, metrics, dataDirStore })
      : persisted(localSource(options.flags!, config, log), options, config, log, dataDirStore))
  // The relay's gauges read the status in every mode, so /metrics says what it says: a broken
  // `--flags FILE` is `stale: true` in the status and `holdfast_relay_stale 1` here (before, that
  // mode had none of them). The relay modes register theirs with their counters (relayOptions.ts);
  // a registry that has them already (one passed to two handlers) keeps the first's.
  if ((options.source !== undefined || !wantsRelay(options)) && !metrics.registry.getSingleMetric('holdfast_relay_stale')) {
    registerRelayMetrics(metrics.registry, () => statusOf(source, Date.now()))
  }
  // The events spool lives in the relay's data dir by default.
  const events = createEventsPipeline(options, { log, registry: metrics.registry, dataDir: options.dataDir })
  const sink = events.sink
  const cache = createAnswerCache(config.answerCacheBytes)
  let draining = false
  let closing: Promise<void> | undefined

  // Created after the flags are loaded: the start-up compile is not load to shed.
  let shedder: ReturnType<typeof createLoadShedder> | undefined
  metrics.bind({ definitionsFetchedAt: () => source.current()?.fetchedAt, eventLoopDelay: () => shedder?.window() })
  const unsubscribe = source.subscribe((event) => {
    if (event.type === 'update') {
      cache.clear()
      metrics.definitionsInfo.reset()
      // Named as metadata.holdfast.source, the status and /readyz name it (CONTRACT §9): `upstream`
      // for --flags-url, `file` for definitions in code, not the internal `url` / `inline`.
      metrics.definitionsInfo.set({ version: event.version.version, origin: servedSourceOf(event.version.origin) }, 1)
      metrics.definitionsFlags.set(event.version.flagCount)
    } else if (event.type !== 'error' || !event.reported) {
      metrics.reloadFailures.inc({ reason: event.type === 'error' ? 'unreadable' : event.invalid ? 'invalid' : 'refused' })
    }
  })

  // One server per data dir (flags/persistence.ts), taken before anything reads or writes it; a
  // lock that hangs (a dead network mount) holds the start at most 5 s, then the dir is not used.
  // The events file or spool is opened meanwhile, under its own lock and bound: a dead mount under
  // both (the spool's default place is the data dir) costs the start one bound, not two.
  let releaseDataDir = async () => {}
  const flagsOpen = (async () => {
    if (dataDirStore !== undefined) releaseDataDir = await lockDataDirWithin(dataDirStore, log)
    await source.open()
  })()
  const [flagsOpened, eventsOpened] = await Promise.allSettled([flagsOpen, events.open()])
  const failed = [flagsOpened, eventsOpened].find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
  if (failed) {
    unsubscribe()
    await source.close()
    await events.close().catch(() => undefined)
    await releaseDataDir()
    throw failed.reason
  }
  shedder = createLoadShedder({ maxEventLoopDelayMs: config.maxEventLoopDelayMs })

  const demo = options.demoControls ? createDemoControls({ sink, isClosing: () => draining }) : undefined
  const stream = options.liveUpdates === false ? undefined : openStreamHub(options.liveUpdates, log)
  const unfollow = stream?.follow(source)
  if (stream) registerStreamMetrics(metrics.registry, stream)
  const unwatch =
    stream && isRelaySource(source) && source.origin === 'upstream'
      ? stream.watchUpstream(() => source.refreshDetails(), (options.pollIntervalSeconds ?? DEFAULT_POLL_INTERVAL_SECONDS) * 1000, source.onTaken && ((listener) => source.onTaken!(listener)), source.fleetStreams, source.onReaskNews && ((listener) => source.onReaskNews!(listener)), source.reaskRecent && (() => source.reaskRecent!()))
      : undefined
  // Advertised only where notices can come: definitions that change, or the relay's upstream watch.
  // A custom per-context source tells of no change, and its answers go out as it made them.
  const advertised = stream && (!source.evaluate || unwatch) ? stream.advertisement() : undefined
  const configuredUri = typeof options.liveUpdates === 'object' && options.liveUpdates.requestUri !== undefined
  // Notices name versions (definitions modes): a refetch naming one not served here yet waits for it (catchUp.ts).
  const catchUp = stream && !source.evaluate ? createCatchUp(source) : undefined
  const ofrep = { flags: source, limits, cache, metrics, streams: advertised, streamsAt: advertised && !configuredUri ? stream!.advertisement : undefined, catchUp }
  const BULK_PATH = '/ofrep/v1/evaluate/flags'
  const routes: Record<string, Route> = {
    [BULK_PATH]: { name: 'ofrep.bulk', shed: true, refuse: refuseNotJson, methods: { POST: (req, res) => handleBulkEvaluation(req, res, ofrep) } },
    '/holdfast/v1/events': { name: 'events', shed: true, refuse: (req, res) => refuseEvents(req, res, events), methods: { POST: (req, res) => handleEvents(req, res, events) } },
    ...(stream ? { [STREAM_PATH]: { name: 'stream', methods: { GET: (req, res) => stream.handle(req, res) } } } : {}),
    ...demo?.routes,
    ...createRelayRoutes({ source, adminKey: options.adminKey, events: () => events.status(), refreshAnswerWithinMs: options.refreshAnswerWithinMs }),
    ...options.routes,
  }
  Object.assign(
    routes,
    createOpsRoutes({
      flags: source,
      metrics,
      isDraining: () => draining,
      eventsStalled: () => events.stalled(),
      endpoints: () => [
        ['POST /ofrep/v1/evaluate/flags', 'OFREP bulk evaluation: {"context": {"targetingKey": ...}}'],
        ['POST /ofrep/v1/evaluate/flags/{key}', 'OFREP evaluation of one flag'],
        ['POST /holdfast/v1/events', 'Holdfast events: {"events": [...]}'],
        ...(stream ? ([['GET /holdfast/v1/stream', 'OFREP event stream (SSE): a notice when the flags change']] as Array<[string, string]>) : []),
        ['GET /holdfast/v1/status', 'what is served, how old it is, and the upstream state'],
        ['POST /holdfast/v1/refresh', 'ask the upstream now (admin key)'],
        ...Object.entries(options.routes ?? {}).map(([path, route]) => [`${Object.keys(route.methods).join('/')} ${path}`, route.name] as [string, string]),
        ...(demo ? ([['GET/POST /demo/outage', 'demo outage controls'], ['POST /demo/reset-events', 'forget received events']] as Array<[string, string]>) : []),
        ['GET /healthz', 'liveness: 200 while the process answers'],
        ['GET /readyz', 'readiness: 200 while flags are being served'],
        ['GET /metrics', 'Prometheus metrics'],
      ],
    }),
  )
  const listener = createRequestListener({
    routes,
    resolve(path) {
      if (!path.startsWith(`${BULK_PATH}/`)) return undefined
      const key = decodeKey(path.slice(BULK_PATH.length + 1))
      if (key === '') return undefined
      return { name: 'ofrep.flag', shed: true, refuse: refuseNotJson, methods: { POST: (req, res) => handleFlagEvaluation(req, res, key, ofrep) } }
    },
    middleware: [...(demo ? [demo.middleware] : []), ...(options.middleware ?? [])],
    apiKey: config.apiKey || undefined,
    corsOrigin: options.corsOrigin,
    log,
    metrics,
    shedder,
    isDraining: () => draining,
  })

  const handler = ((req, res, next) => listener(req, res, next)) as FlagHandler
  handler.source = source
  handler.metrics = metrics
  handler.events = () => sink.recent()
  if (events.forwarder) handler.eventsForwarding = () => events.stats()!
  handler.resetEvents = () => sink.reset()
  handler.setFlags = (definitions) => {
    if (!('set' in source)) throw new Error('[holdfast-server] setFlags() needs the `flags` option, not a custom source')
    ;(source as EditableFlagSource).set(definitions)
  }
  handler.reloadFlags = () => source.refresh()
  handler.outage = demo && { get: demo.outage.get, set: demo.outage.set }
  handler.stream = stream
  handler.drain = () => {
    draining = true
    // Open streams would hold the drain for ever; clients reconnect (with jitter) elsewhere.
    stream?.close()
    catchUp?.close()
    // Requests held by the demo's `hang` give up now rather than hold the drain.
    demo?.outage.release()
  }
  handler.close = () => {
    closing ??= (async () => {
      handler.drain()
      unsubscribe()
      unfollow?.()
      unwatch?.()
      shedder?.stop()
      await source.close()
      await events.close()
      await releaseDataDir()
    })()
    return closing
  }
  return handler
}

function localSource(flags: string | FlagdDefinitions, config: ReturnType<typeof readHandlerOptions>, log: ServerLogger): EditableFlagSource {
  const common = { strictValidation: config.strictValidation, maxShrinkPercent: config.maxShrinkPercent, log }
  return typeof flags === 'string' ? createFileSource(resolve(flags), common) : createStaticSource(flags, common)
}

// --flags FILE with --data-dir / --snapshot: layers under the file (see flags/persistedSource.ts).
function persisted(source: FlagSource, options: FlagHandlerOptions, config: ReturnType<typeof readHandlerOptions>, log: ServerLogger, store: GenerationStore | undefined): FlagSource {
  if (options.dataDir === undefined && options.snapshot === undefined) return source
  return createPersistedSource(source, {
    store,
    snapshotPath: options.snapshot === undefined ? undefined : resolve(options.snapshot),
    strict: config.strictValidation,
    maxShrinkPercent: config.maxShrinkPercent,
    name: typeof options.flags === 'string' ? resolve(options.flags) : undefined,
    log,
  })
}

/** A flag key from the path, %-decoded; one whose %-encoding is broken is taken as sent (no flag has it: FLAG_NOT_FOUND for it, not the generic 404). */
function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}
