// Wires the events side of the server from its options: the sink, where it stores (the events
// file, the forwarding spool, or memory), the forwarder, and their metrics. The request handler
// only opens, closes and routes to it.
import { mkdir, realpath, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { Registry } from 'prom-client'
import type { ServerLogger } from '../logger'
import type { DedupeWindowOptions } from './dedupeWindow'
import { nodeFileSystem, watchedFileSystem, type EventFileSystem } from './fileSystem'
import { didNotAnswer, stuck } from '../flags/dataDirTiming'
import { CLOSE_WAIT_MS } from '../flags/persistence'
import { acquireLock } from './lockFile'
import { createDeadLetter } from './deadLetter'
import { createForwarder, type Forwarder } from './forwarder'
import type { ForwarderOptions } from './forwarderOptions'
import type { ForwardingStats } from './forwardingStats'
import { createEventsMetrics, type EventsMetrics } from './metrics'
import { createEventsFile } from './eventsFile'
import { createEventSink, DEFAULT_WRITE_TIMEOUT_MS, realClock, type EventSink, type SinkClock } from './sink'
import { stallOf, type StoreStall } from './storeStall'
import { EVENT_LIMITS } from './schema'
import { createSpool } from './spool'

/** Default spool directory of `eventsUpstream`, relative to the working directory. */
export const DEFAULT_SPOOL_DIR = '.holdfast/events-spool'

/** The events options of `createFlagHandler` / `createFlagServer`. */
export interface EventsOptions {
  /**
   * JSON Lines file that accepted events are appended to (fsynced before the 202) and whose tail
   * is read back on start so de-duplication survives a restart. Default: none (memory only: the
   * dedupe window and `events()` still work, nothing is kept across restarts).
   */
  eventsFile?: string
  /** Rotate `eventsFile` once it would pass this many bytes (`--events-max-bytes`). Default: never. */
  eventsMaxBytes?: number
  /** Rotated events files kept (`events.jsonl.1` newest … `.N`); older are deleted, each with a warning and in `holdfast_events_file_deleted_bytes_total` (`--events-keep`). Default 5. */
  eventsKeep?: number
  /**
   * The de-duplication window: an event id is refused as a duplicate while it is among the last
   * `maxIds` accepted (default 100,000) and was accepted less than `windowMs` ago (default 24 h).
   * Past that, delivery is at-least-once. `now` is the clock, for tests (default: epoch ms at start
   * counted on by the monotonic clock, so a system clock stepped while the server runs forgets no id).
   */
  eventsDedupe?: DedupeWindowOptions
  /**
   * The file system the events file (and spool) is written through. Default: node:fs. Tests
   * inject one that fails on cue (disk full, short writes, a failing fsync).
   */
  eventsFileSystem?: EventFileSystem
  /**
   * Forward accepted events to this upstream events endpoint (`--events-upstream URL`, e.g.
   * `https://flags.example/holdfast/v1/events`) instead of keeping them: each batch is fsynced
   * into a spool (`eventsSpoolDir`) before the 202, then delivered in batches with backoff,
   * `Retry-After` and jitter, and leaves the spool only after a 2xx (docs/events-sink.md,
   * "Events through the relay"). Cannot be combined with `eventsFile`. Default: none.
   */
  eventsUpstream?: string
  /**
   * The spool directory for `eventsUpstream` (`--events-spool DIR`). Default: `events-spool` in the
   * relay's `dataDir` when one is given, else {@link DEFAULT_SPOOL_DIR} in the working directory.
   */
  eventsSpoolDir?: string
  /**
   * Bound of the dead-letter file, `<spool>/dead-letter/dead-letter.ndjson`, where events the
   * upstream refuses for good (413 alone, 400/422) are kept (`--events-dead-letter-max-bytes N`).
   * Default 64 MiB; when full, a refused event is dropped and the status, a metric and the log say so.
   */
  eventsDeadLetterMaxBytes?: number
  /** Headers sent with every forwarded batch (e.g. `{ Authorization: 'Bearer KEY' }`). Default none. */
  eventsUpstreamHeaders?: Record<string, string>
  /**
   * Tuning of the forwarder (batch size, timeouts, backoff, an injected clock for tests). Defaults:
   * see `ForwarderOptions`. Not its `deadLetter`: the spool's own file is (the one
   * `events replay-dead-letters` reads), so one given here was replaced without a word.
   */
  eventsForwarding?: Omit<ForwarderOptions, 'url' | 'spool' | 'log' | 'headers' | 'deadLetter'>
  /**
   * How long an events request waits for the events file or spool (its write and fsync) before it
   * is answered 503 with `Retry-After` (the client keeps its events and retries); while that write
   * stays hung (a mount that died), later requests are answered 503 at once, and
   * `/holdfast/v1/status` (`events.stalled`) and `holdfast_events_store_stalled_seconds` show it.
   * Default 4,000 ms (under the browser client's 5 s request timeout).
   */
  eventsWriteTimeoutMs?: number
  /** The clock of `eventsWriteTimeoutMs`. Default the global timers and a monotonic epoch-ms clock (a stepped wall clock does not fake or hide a stall); tests inject one. */
  eventsClock?: SinkClock
}

/** `events` in `/holdfast/v1/status`: where events go, a write that hangs, and the forwarding. */
export interface EventsStatus {
  /** Where accepted events go: the events file (`--events-file`), the spool (`--events-upstream`), or memory only. */
  store: 'file' | 'spool' | 'memory'
  /** The events file or the spool directory. */
  path?: string
  /** A write (or fsync) of the store that has not returned within `eventsWriteTimeoutMs`: since when (epoch ms, the system clock's, as the log is dated), on which file. */
  stalled?: StoreStall
  /** Another server took the file's or spool's lock over (`by`: its pid, host and since; `at`: when this one saw it): events are refused (503) and not forwarded. */
  takenOver?: {
    /** The other server: its pid, host and since when it holds the lock. */
    by: string
    /** When this server saw the lock taken over (epoch ms). */
    at: number
  }
  /**
   * With `eventsUpstream`: the spool and the forwarder (pending, oldest age, state, delivered,
   * dropped, last error), and `stalled` when its read of the spool or its cursor write has not
   * returned within `eventsWriteTimeoutMs` (delivery waits on it; taking events may not).
   */
  forwarding?: ForwardingStats & {
    /** The spool read or cursor write that has not returned within `eventsWriteTimeoutMs`; absent while none. */
    stalled?: StoreStall
  }
}

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
  // A stall as the status shows it: `since` by the system clock. The steady clock times it (and
  // tells one stall from the next), but it is the clock at the process's start counted on: a server
  // started before NTP set the system clock showed `since` hours off the logs.
  //
  // Worked out once per stall (the steady `since` tells one from the next), then kept: worked out
  // at each read, an NTP step during the stall moved `since` by the step on the next read, and
  // Date.now and the steady clock, not read at once, put it a millisecond off now and then: one
  // stall seen as another, by the status, /readyz and an alert alike.
  const onWall = () => {
    let seen: { steady: number; wall: number } | undefined
    return (stall: StoreStall | undefined): StoreStall | undefined => {
      if (!stall) return (seen = undefined)
      if (seen?.steady !== stall.since) seen = { steady: stall.since, wall: Math.round(Date.now() - (clock.now() - stall.since)) }
      return { ...stall, since: seen.wall }
    }
  }
  const shownStore = onWall()
  const shownReader = onWall()
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
    spool: forwarder && (() => forwarding()!),
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
                void forwarder?.stop()
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

// The lock file named by the real path of what it guards: two servers given one file through
// different names (a symlinked directory, a symlink to the file) must meet at one lock. Before,
// each took its own lock beside the name it was given, and both appended to the one file.
// `path` with every symlink followed; one that does not exist yet (an events file before its first
// start) is named through the real path of its directory.
async function realPath(path: string): Promise<string> {
  return (await realpath(path).catch(() => undefined)) ?? join(await realpath(dirname(path)), basename(path))
}

// The OS error alone ("EEXIST: file already exists, mkdir '…'") says neither that it is about the
// events file nor what to change: said here with the path the operator gave and the reason.
/**
 * The OS error when the lock file itself could not be made (acquireLock's refusal carries it as
 * its `cause`; EEXIST is another server's lock). Reported as the file or spool being unusable:
 * before, a directory the server may not write in (EACCES, EROFS) read "is in use by another
 * server … or delete the lock", a server and a lock that did not exist.
 */
function lockNotMade(error: unknown): NodeJS.ErrnoException | undefined {
  const cause = (error as { cause?: NodeJS.ErrnoException }).cause
  return cause instanceof Error && typeof cause.code === 'string' && cause.code !== 'EEXIST' ? cause : undefined
}

async function unusable(error: NodeJS.ErrnoException, what: string, path: string): Promise<Error> {
  if (error.message.startsWith('[holdfast-server]') || error.code === undefined) return error
  let why = error.message
  if (error.code === 'EISDIR') why = 'it is a directory'
  else if (error.code === 'EACCES' || error.code === 'EPERM') why = 'permission denied'
  else if (error.code === 'EROFS') why = 'a read-only file system'
  else if (error.code === 'EEXIST' || error.code === 'ENOTDIR') {
    // A file where a directory of the path should be: name it.
    for (let at = path; at !== dirname(at); at = dirname(at)) {
      const info = await stat(at).catch(() => undefined)
      if (info && !info.isDirectory()) {
        why = `${at} is a file, not a directory`
        break
      }
      if (info) break
    }
  }
  return new Error(`[holdfast-server] cannot use ${what}: ${error.code}, ${why}`)
}
