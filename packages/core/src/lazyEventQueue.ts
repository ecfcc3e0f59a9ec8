// The event pipeline (eventQueue.ts and what it pulls in: the store, the cross-tab flush lock,
// delivery) is about a third of the client's bytes, so it is loaded on demand: a page whose client
// has no `events` never downloads it, and one that has them fetches it at `start()` or at the
// first event, off the first-paint path. Until it is there, this stand-in takes the events: it
// counts them, holds them under the same `maxQueued` bound, and writes each one to storage under
// its final key within WRITE_DELAY_MS, so CONTRACT §6's "persisted within 100 ms" holds however
// slowly the chunk arrives. On arrival the pipeline takes them over, written or not.
import { eventKey, MAX_QUEUED, positive, within, WRITE_DELAY_MS, type HeldEvent } from './eventBasics'
import type { EventPipeline, EventQueue, EventQueueOptions } from './eventQueue'
import type { EventStats } from './types'

type Pipeline = { createEventQueue: (config: EventQueueOptions) => EventPipeline }

export interface PipelineLoader {
  load(): Promise<Pipeline>
  /** Set once loaded: later clients take the pipeline without fetching it again. */
  loaded?: Pipeline
}

const chunk: PipelineLoader = { load: () => import('./eventQueue') }

/** The stand-in's `start` also tells when the pipeline is attached, so `client.start()` can wait for it. */
export interface LazyEventQueue extends EventQueue {
  /** Resolves once the pipeline loaded and started, or failed to, or `requestTimeoutMs` passed. */
  start(): Promise<void>
}

export function createLazyEventQueue(config: EventQueueOptions, loader: PipelineLoader = chunk): LazyEventQueue {
  const { clock, logger, storage } = config
  const maxQueued = positive(config.options.maxQueued, MAX_QUEUED)
  let queue: EventQueue | undefined
  let loading: Promise<EventQueue | undefined> | undefined
  let held: HeldEvent[] = []
  let dropped = 0
  let timer: unknown
  /** The stand-in's writes, one after another; the hand-over waits for them. */
  let writes: Promise<unknown> = Promise.resolve()
  let started = false
  let closed = false

  const stats = (): EventStats => queue?.stats() ?? { queued: held.length, sent: 0, dropped, retries: 0 }

  function write() {
    timer = undefined
    writes = writes
      .then(async () => {
        const batch = held.filter((h) => !h.written)
        if (queue || batch.length === 0) return
        const entries: [string, unknown][] = batch.map((h) => [h.key, h.event])
        // As in the store: a failed write has moved SafeStorage to memory, where the second lands.
        if (!((await storage.setMany(entries)) || (await storage.setMany(entries)))) return
        for (const h of batch) h.written = true
        // Pushed out by the bound while being written: it must not linger in storage.
        const kept = new Set(held)
        const gone = batch.filter((h) => !kept.has(h))
        if (gone.length > 0) await storage.del(gone.map((h) => h.key))
      })
      // Never a rejected chain: the hand-over waits on it.
      .catch((error: unknown) => logger.error('[holdfast] writing events failed', error))
  }

  function create(module: Pipeline): Promise<EventQueue> {
    if (timer !== undefined) clock.clearTimeout(timer)
    timer = undefined
    // After any write under way, so the pipeline knows exactly which events are in storage.
    const handOver = writes.then(() => {
      const pipeline = module.createEventQueue({ ...config, dropped })
      // Started first: its listing looks for what earlier pages left, and these are this page's.
      if (started) pipeline.start()
      if (held.length > 0) pipeline.adopt(held)
      held = []
      if (closed) void pipeline.close()
      return (queue = pipeline)
    })
    writes = handOver
    return handOver
  }

  function ready(): Promise<EventQueue | undefined> {
    if (queue) return Promise.resolve(queue)
    loading ??= (loader.loaded ? Promise.resolve(loader.loaded) : loader.load()).then(
      (module) => create((loader.loaded = module)),
      (error: unknown) => {
        // A failed chunk request (offline, a deploy that removed it) is tried again on the next
        // start, event or flush; meanwhile the events are held, and written, here.
        loading = undefined
        logger.error(`[holdfast] loading the event pipeline failed; ${held.length} events wait until it loads`, error)
        return undefined
      },
    )
    return loading
  }

  const bounded = <T>(promise: Promise<T>) => within(clock, config.requestTimeoutMs, promise)

  const report = () => config.onStats(stats())

  return {
    async start() {
      if (closed) return
      started = true
      if (queue) return queue.start()
      await bounded(ready())
    },

    enqueue(event) {
      if (queue) return queue.enqueue(event)
      held.push({ key: eventKey(event), event, written: false })
      if (held.length > maxQueued) {
        const [oldest] = held.splice(0, 1)
        dropped++
        if (oldest.written) void storage.del([oldest.key])
        logger.warn(`[holdfast] the event queue is full (maxQueued ${maxQueued}); dropped the oldest`)
      }
      timer ??= clock.setTimeout(write, WRITE_DELAY_MS)
      report()
      void ready()
    },

    flush: () => bounded(ready()).then((q) => q?.flush()),

    stats,

    async close() {
      closed = true
      // Nothing was ever logged or started: there is nothing to write or send, so nothing to load.
      if (!queue && !loading && !started && held.length === 0) return
      // A chunk that never arrives must not hold close() up; what was logged is in storage by
      // then, for the next page.
      const q = await bounded(ready())
      // `create` has closed it if it arrived after the flag was set; closing twice is one close.
      await q?.close()
    },
  }
}
