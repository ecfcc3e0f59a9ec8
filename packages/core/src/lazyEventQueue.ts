// The event pipeline (eventQueue.ts and what it pulls in: the persisted store, the cross-tab flush
// lock, delivery) is about a quarter of the client's bytes. It is loaded on demand: a page whose
// client has no `events` never downloads it, and one that has them fetches it at `start()` or at
// the first event, off the first-paint path. Until it is there, this stand-in keeps the events in
// memory, in order, under the same `maxQueued` bound, and counts them, so `logEvent`,
// `getEventStats` and `flush` behave the same before and after; on arrival it hands them over
// and they are written to storage at once (CONTRACT §6: within 100 ms of being logged).
import type { EventPipeline, EventQueue, EventQueueOptions } from './eventQueue'
import type { EventStats, LoggedEvent } from './types'

type Pipeline = { createEventQueue: (config: EventQueueOptions) => EventPipeline }

export interface PipelineLoader {
  load(): Promise<Pipeline>
  /** Set once loaded: later clients create their queue without waiting. */
  loaded?: Pipeline
}

const chunk: PipelineLoader = { load: () => import('./eventQueue') }

/** The stand-in's `start` also tells when the pipeline is attached, so `client.start()` can wait for it. */
export interface LazyEventQueue extends EventQueue {
  /** Resolves once the pipeline loaded and started, or failed to, or `requestTimeoutMs` passed. */
  start(): Promise<void>
}

export function createLazyEventQueue(config: EventQueueOptions, loader: PipelineLoader = chunk): LazyEventQueue {
  const max = config.options.maxQueued
  const maxQueued = typeof max === 'number' && Number.isFinite(max) && max > 0 ? max : 10_000
  let queue: EventQueue | undefined
  let loading: Promise<EventQueue | undefined> | undefined
  let pending: LoggedEvent[] = []
  let dropped = 0
  let started = false
  let closed = false

  const stats = (): EventStats => queue?.stats() ?? { queued: pending.length, sent: 0, dropped, retries: 0 }

  function create(module: Pipeline): EventQueue {
    const pipeline = module.createEventQueue({ ...config, dropped })
    // Started first: its listing looks for what earlier pages left, and these are this page's.
    if (started) pipeline.start()
    if (pending.length > 0) pipeline.adopt(pending)
    pending = []
    if (closed) void pipeline.close()
    return (queue = pipeline)
  }

  function ready(): Promise<EventQueue | undefined> {
    if (queue) return Promise.resolve(queue)
    if (loader.loaded) return Promise.resolve(create(loader.loaded))
    loading ??= loader.load().then(
      (module) => create((loader.loaded = module)),
      (error: unknown) => {
        // A failed chunk request (offline, a deploy that removed it) is tried again on the next
        // start, event or flush; meanwhile the events stay here, counted as queued.
        loading = undefined
        config.logger.error(`[holdfast] loading the event pipeline failed; ${pending.length} events are held in memory until it loads`, error)
        return undefined
      },
    )
    return loading
  }

  return {
    async start() {
      if (closed) return
      started = true
      if (queue) return queue.start()
      await bounded(ready())
    },

    enqueue(event) {
      if (queue) return queue.enqueue(event)
      pending.push(event)
      if (pending.length > maxQueued) {
        pending.shift()
        dropped++
        config.logger.warn(`[holdfast] the event queue is full (maxQueued ${maxQueued}); dropped the oldest`)
      }
      report()
      void ready()
    },

    flush: () => bounded(ready()).then((q) => q?.flush()),

    stats,

    async close() {
      closed = true
      // Nothing was ever logged or started: there is nothing to write or send, so nothing to load.
      if (!queue && !loading && !started && pending.length === 0) return
      // A chunk that never arrives must not hold close() up: what was logged is lost with the page.
      const q = await bounded(ready())
      // `create` has closed it if it arrived after the flag was set; closing twice is one close.
      await q?.close()
    },
  }

  /** Waits for `promise`, or `requestTimeoutMs`, whichever comes first. */
  async function bounded<T>(promise: Promise<T>): Promise<T | undefined> {
    let timer: unknown
    const late = new Promise<undefined>((resolve) => (timer = config.clock.setTimeout(() => resolve(undefined), config.requestTimeoutMs)))
    try {
      return await Promise.race([promise, late])
    } finally {
      config.clock.clearTimeout(timer)
    }
  }

  function report() {
    try {
      config.onStats(stats())
    } catch (error) {
      config.logger.error('[holdfast] an event stats listener threw', error)
    }
  }
}
