// Wires the events side of the server from its options: the sink, where it stores (the events
// file, the forwarding spool, or memory), the forwarder, and their metrics. The request handler
// only opens, closes and routes to it.
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { Registry } from 'prom-client'
import type { ServerLogger } from '../logger'
import { nodeFileSystem, watchedFileSystem } from './fileSystem'
import { didNotAnswer, stuck } from '../flags/dataDirTiming'
import { CLOSE_WAIT_MS } from '../flags/persistence'
import { acquireLock } from './lockFile'
import { createDeadLetter } from './deadLetter'
import { DEFAULT_SPOOL_DIR, type EventsOptions } from './eventsOptions'
import type { EventsStatus } from './eventsStatus'
import { createForwarder, type Forwarder } from './forwarder'
import { DEFAULT_BATCH_SIZE } from './forwarderOptions'
import type { ForwardingStats } from './forwardingStats'
import { createEventsMetrics, type EventsMetrics } from './metrics'
import { createEventsFile } from './eventsFile'
import { realPath } from './realPath'
import { createEventSink, DEFAULT_WRITE_TIMEOUT_MS, realClock, type EventSink } from './sink'
import { stallOnWall } from './stallOnWall'
import { stallOf, type StoreStall } from './storeStall'
import { EVENT_LIMITS } from './schema'
import { createSpool } from './spool'
import { lockNotMade, unusable } from './unusable'

/** The events side of a server. */
export interface EventsPipeline {
  sink: EventSink
  metrics: EventsMetrics
  forwarder?: Forwarder
  /**
   * With `eventsUpstream`: the largest an event may be as the forwarder sends it alone (the
   * upstream's body cap, 1 MiB as this server's): intake refuses a bigger one (413), so that no
   * event answered 202 is one the upstream must refuse.
   */
  forwardedBytesCap?: number
  /** Reads ids back, then starts forwarding. */
  open(): Promise<void>
  /** Stops forwarding, then closes the sink. */
  close(): Promise<void>
  stats(): ForwardingStats | undefined
  /** Set once another server took the lock over: who, and when (epoch ms). Events are refused from then on. */
  takenOver(): { by: string; at: number } | undefined
  /** The store's write that has not returned within `eventsWriteTimeoutMs`, as the status shows it (`since` by the system clock). */
  stalled(): StoreStall | undefined
  status(): EventsStatus
}

/** Creates the {@link EventsPipeline} for `options`; throws on options that contradict each other. */
export function createEventsPipeline(options: EventsOptions, deps: { log: ServerLogger; registry: Registry; dataDir?: string }): EventsPipeline {
  const { log } = deps
  const spoolDir = resolve(options.eventsSpoolDir ?? (deps.dataDir ? join(deps.dataDir, 'events-spool') : DEFAULT_SPOOL_DIR))
  if (options.eventsUpstream !== undefined && options.eventsFile !== undefined) {
    throw new Error('[holdfast-server] choose one of eventsFile (keep events here) and eventsUpstream (forward them)')
  }
  const metrics = createEventsMetrics(deps.registry)
  const onSync = (seconds: number) => metrics.fsync.observe(seconds)
  // When a file-system call of the events store last returned: the open's bound (see `open`).
  let returnedAt = performance.now()
  const fs = watchedFileSystem(options.eventsFileSystem ?? nodeFileSystem, () => (returnedAt = performance.now()))
  // One clock for when a write began and for how long it has run (see `realClock`).
  const clock = options.eventsClock ?? realClock
  const busyNow = () => clock.now()
  // A stall as the status shows it: `since` by the system clock, worked out once per stall (see stallOnWall.ts).
  const shownStore = stallOnWall(clock)
  const shownReader = stallOnWall(clock)
  const spool =
    options.eventsUpstream === undefined
      ? undefined
      : createSpool({ dir: spoolDir, fs, now: options.eventsForwarding?.clock?.wall ?? options.eventsForwarding?.clock?.now, steady: options.eventsForwarding?.clock?.now, busyNow, onSync, log })
  const forwarder =
    spool &&
    createForwarder({
      ...options.eventsForwarding,
      url: options.eventsUpstream!,
      spool,
      deadLetter: createDeadLetter({ spoolDir, fs, maxBytes: options.eventsDeadLetterMaxBytes }),
      headers: options.eventsUpstreamHeaders,
      log,
      onAttempt(outcome, events) {
        options.eventsForwarding?.onAttempt?.(outcome, events)
        if (outcome === 'delivered' || outcome === 'dead_lettered' || outcome === 'dropped' || outcome === 'lost') metrics.forwarded.inc({ outcome }, events)
      },
    })
  const store =
    spool ??
    (options.eventsFile === undefined
      ? undefined
      : createEventsFile({ path: resolve(options.eventsFile), maxBytes: options.eventsMaxBytes, keep: options.eventsKeep, fs, onSync, onDeleted: (bytes) => metrics.fileDeletedBytes.inc(bytes), now: busyNow, log }))
  const sink = createEventSink({
    store,
    dedupe: options.eventsDedupe,
    fs,
    log,
    writeTimeoutMs: options.eventsWriteTimeoutMs,
    clock,
    onBatch(result) {
      metrics.accepted.inc(result.accepted)
      metrics.duplicates.inc(result.duplicates)
    },
  })
  // The forwarder's spool calls are bounded by nothing (it waits for them), but one that hangs is
  // shown as the sink's writes are: before, a relay whose spool mount died with no events coming
  // in said `state: ok` for ever, its pending never draining.
  const readerStalled = () => stallOf(spool?.readerBusy(), clock.now(), options.eventsWriteTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS)
  // Set when the lock was found to be another server's (see open()).
  let takenOver: { by: string; at: number } | undefined
  // The forwarding as status, metrics and eventsForwarding() show it. Once the spool was taken
  // over it is the new holder's, who drains it: before, this relay went on showing the state and
  // `pending` of the takeover, and an oldest age that grew while the new holder delivered, so an
  // oldest-age (or `failing`) alert on it fired for events another server was delivering.
  const forwarding = (): ForwardingStats | undefined => {
    const stats = forwarder?.stats()
    if (!stats || !takenOver) return stats
    const { cursorUnsaved: _theirs, ...rest } = stats
    return { ...rest, state: 'taken-over', pending: 0, oldestAgeMs: 0 }
  }
  metrics.bind({
    rememberedIds: () => sink.rememberedIds(),
    spool: forwarder && (() => ({ ...forwarding()!, batchSize: Math.max(1, options.eventsForwarding?.batchSize ?? DEFAULT_BATCH_SIZE) })),
    stalled: () => [sink.stalled(), readerStalled()].filter((stall): stall is StoreStall => stall !== undefined),
  })
  // One server per events file or spool (lockFile.ts): a second one is refused at start.
  const guarded = spool ? spoolDir : options.eventsFile === undefined ? undefined : resolve(options.eventsFile)
  const what = spool ? `the events spool ${spoolDir}` : `the events file ${resolve(options.eventsFile ?? '')}`
  let release: (() => Promise<void>) | undefined
  // Set when the open did not answer in time: it goes on (a hung call cannot be cancelled), and
  // what it opens late is closed by it, not by close() (which must not wait for a hung mount).
  let abandoned = false
  return {
    sink,
    metrics,
    forwarder,
    ...(forwarder ? { forwardedBytesCap: EVENT_LIMITS.maxBodyBytes } : {}),
    async open() {
      const opening = (async () => {
        try {
          if (guarded) {
            await mkdir(spool ? guarded : dirname(guarded), { recursive: true })
            release = await acquireLock(spool ? join(await realPath(guarded), 'LOCK') : `${await realPath(guarded)}.lock`, what, undefined, {
              onProgress: () => (returnedAt = performance.now()),
              onLost: (holder) => {
                // Another server took the lock over (this one was stopped or its mount hung for
                // 30 s): from here it is that server's file or spool. This one stops writing to it
                // (events requests 503: clients keep their events and retry, reaching the holder
                // behind a load balancer) and stops forwarding (two forwarders send and delete the
                // same segments, and overwrite each other's cursor: events lost).
                takenOver = { by: holder, at: Date.now() }
                log.error(`events: ${what} was taken over by another server (${holder}); this one no longer takes events (503) nor forwards them. Two servers on one events file or spool lose and duplicate events: stop one, or give each its own.`)
                void forwarder?.stop(true) // at once: a 2xx acked now would write the new holder's cursor
              },
            })
          }
          await sink.open()
          // A 202 makes a client forget its events: an operator who left out --events-file must
          // hear, at start, that they go nowhere durable (before, the server said nothing).
          if (!store) log.info('events: no --events-file (eventsFile) or --events-upstream: events are answered 202 but kept only in memory (the last 1,000, for server.events()) and are lost when the server stops')
        } catch (error) {
          await release?.()
          release = undefined
          throw await unusable(lockNotMade(error) ?? (error as NodeJS.ErrnoException), what, spool ? spoolDir : resolve(options.eventsFile ?? ''))
        }
      })()
      opening.catch(() => {})
      // A spool or file on a network mount whose server is gone does not fail, it hangs: before,
      // the start then waited for ever, saying nothing and never listening. Bounded as the data
      // dir is (flags/persistence.ts); then refused as any unusable spool or file is: a 202 for an
      // event that cannot be stored would lose it. The bound is on one call that does not return,
      // not on the whole open: a relay restarted after a long outage counts a large spool read
      // after read, and on a slow disk that takes longer than the bound. Before, that start was
      // refused as "a hung mount?", and so was every restart after it.
      returnedAt = performance.now()
      if (await stuck(opening, () => returnedAt)) {
        abandoned = true
        void opening.then(async () => {
          await sink.close().catch(() => undefined)
          await release?.()
        }, () => {})
        throw new Error(`[holdfast-server] cannot use ${what}: it ${didNotAnswer()} Check the mount, or put ${spool ? '--events-spool (eventsSpoolDir)' : '--events-file (eventsFile)'} on a local disk.`)
      }
      if (forwarder && spool) {
        log.info(`events: forwarding to ${options.eventsUpstream} through the spool in ${spoolDir} (${spool.pending()} waiting)`)
        forwarder.start()
      }
    },
    async close() {
      if (abandoned) return
      const closing = (async () => {
        await forwarder?.stop()
        try {
          await sink.close()
        } finally {
          await release?.()
          release = undefined
        }
      })()
      closing.catch(() => {})
      // A write (or its fsync) on a mount that died after the start never returns, and the sink's
      // close waits for it: before, a drain then never ended. Its request was never answered 202
      // (its client keeps the events), so giving up after CLOSE_WAIT_MS (as the data dir does)
      // loses nothing; rejections still reach the caller.
      const done = await Promise.race([closing.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), CLOSE_WAIT_MS).unref())])
      if (!done) {
        // A call that has not returned for the write bound is a hang; calls that return are a slow disk.
        const hung = sink.stalled() ?? readerStalled()
        const why = hung ? `a call on ${hung.path} has not returned for ${hung.seconds} s: a hung mount?` : 'a slow disk: its calls return, but it is not done'
        log.error(`events: closing ${what} did not finish within ${CLOSE_WAIT_MS / 1000} s (${why}); going on without it (events not yet answered 202 are sent again by their clients)`)
      }
    },
    stats: forwarding,
    takenOver: () => takenOver,
    stalled: () => shownStore(sink.stalled()),
    status() {
      const stalled = shownStore(sink.stalled())
      const reader = shownReader(readerStalled())
      return {
        store: spool ? 'spool' : store ? 'file' : 'memory',
        ...(guarded ? { path: guarded } : {}),
        ...(stalled ? { stalled } : {}),
        ...(takenOver ? { takenOver } : {}),
        ...(forwarder ? { forwarding: { ...forwarding()!, ...(reader ? { stalled: reader } : {}) } } : {}),
      }
    },
  }
}
