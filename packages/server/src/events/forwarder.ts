// Delivers the spool to the upstream events sink (`--events-upstream URL`), oldest first, in
// batches. An event leaves the spool only after a 2xx, or when the sink refuses it for good:
//
// | upstream answer                   | what happens                                              |
// | --------------------------------- | --------------------------------------------------------- |
// | 2xx                               | delivered: the cursor moves past the batch                |
// | 413                               | the batch is halved and retried after a pause of the first|
// |                                   | backoff step, and later batches keep the size that fit; a |
// |                                   | single event still too large is dead-lettered (below)     |
// | 400, 422                          | the batch is split to find the event(s) refused: halved,  |
// |                                   | or cut at the event the sink names (`events[i]` in its   |
// |                                   | `errorDetails`), one request at a time, a pause of the    |
// |                                   | first backoff step between refusals, at most              |
// |                                   | 2 × (log2(batch) + 1) cuts (a piece delivered gives its   |
// |                                   | cut back); a lone refused event, or a                     |
// |                                   | piece refused once the cuts are spent, is dead-lettered   |
// |                                   | (below); every piece taken: its size is kept, as a 413's  |
// | 401, 403, 404, 405, 410, a        | the URL or key is wrong, not the events: kept, reported   |
// | redirect (not followed), a 2xx    | (`state: 'misconfigured'`), retried with backoff: a       |
// | HTML page                         | captive portal or a login page answered, not a sink       |
// | 408, 429, 5xx, other, network,    | kept; retried after `Retry-After` (delta-seconds or       |
// | timeout                           | HTTP-date, read against the sink's `Date`; under the      |
// |                                   | first backoff step it is that step) or capped exponential |
// |                                   | backoff with jitter                                       |
//
// Dead-lettered: appended to the dead-letter file (deadLetter.ts) and fsynced before the cursor
// moves past it; counted in `deadLettered`. Only when that file is full is a refused event dropped
// (`dropped`, logged, `deadLetter.full`); when it cannot be written (a full disk) the event stays
// in the spool and is tried again with the spool's backoff.
import { parseRetryAfter } from '@holdfast/core'
import { clipped } from '../logger'
import { cutAt, gaveBack, pieceDelivered, searched, sizeTaught, startSearch, type BatchSearch } from './batchSearch'
import { createBatchPoster } from './batchPoster'
import { defaultForwarderClock } from './forwarderClock'
import { DEFAULT_BATCH_SIZE, type ForwarderOptions } from './forwarderOptions'
import { createForwarderPause } from './forwarderPause'
import { waitOrAbort, type InFlight } from './forwarderStop'
import { REFUSING_AFTER, type ForwardingStats } from './forwardingStats'

/** The dead-letter file could not be written (a full disk): the events stay in the spool. Named as such in `lastError`, not as the spool's. */
class DeadLetterWriteError extends Error {}

/** Sends the spool upstream until stopped. */
export interface Forwarder {
  start(): void
  /** Stops; a request in flight is given STOP_WAIT_MS to be answered (a 2xx acked), then aborted (at once with `now`). Resolves once idle. */
  stop(now?: boolean): Promise<void>
  stats(): ForwardingStats
}

/** Deliveries in a row at a size a 413 taught before trying twice that size. */
const GROW_AFTER = 100

/** Creates a {@link Forwarder} for `options.spool`. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const { spool, log } = options
  const clock = options.clock ?? defaultForwarderClock
  const wall = () => (clock.wall ? clock.wall() : clock.now())
  const random = options.random ?? Math.random
  const poster = createBatchPoster({ url: options.url, headers: options.headers, timeoutMs: options.timeoutMs, fetch: options.fetch ?? fetch, clock })
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE)
  const batchBytes = options.batchBytes ?? 512 * 1024
  const baseMs = options.backoffBaseMs ?? 1000
  const maxMs = options.backoffMaxMs ?? 60_000
  const stats: Omit<ForwardingStats, 'pending' | 'oldestAgeMs'> = { state: 'ok', delivered: 0, dropped: 0, deadLettered: 0, retries: 0 }
  let running: Promise<void> | undefined
  let stopped = false
  let inFlight: InFlight | undefined
  // Failures in a row of the upstream (reset by a 2xx) and of the spool (reset once it answers),
  // each backing off on its own. Before, they shared one count that only a 2xx reset: after a
  // minute of disk errors it stood at the cap, and once the disk was back the first upstream
  // blip made delivery wait 30–60 s instead of the first step.
  let failures = 0
  let spoolFailures = 0
  let limit = batchSize
  // Deliveries in a row at a size a 413 taught. Before, the size went back to batchSize after each
  // delivery: draining a backlog into a sink with a smaller body cap cost two refused uploads of
  // the big batches for every batch delivered. Now it is kept, and doubled (up to batchSize) only
  // after GROW_AFTER deliveries in a row, in case the sink's cap was raised.
  let fitted = 0
  // The size a search that ended with every piece taken taught (sizeTaught), as a 413 does: told once per size.
  let toldSize: number | undefined
  // The waits: a backoff, a pause after a refusal, or until the spool appends (see forwarderPause.ts).
  const { pause, wake, stop: stopWaiting } = createForwarderPause(clock)
  // A batch the sink refused with 400/422, being searched for its bad event(s) (see batchSearch.ts).
  let search: BatchSearch | undefined
  // The state the upstream's latest answer gave, and whether `stats.state` says `failing` because
  // of the spool instead. Once the spool answers again, the state is the upstream's again: before,
  // a spool error followed by nothing to send (its events lost with a segment, or unreadable)
  // left `failing` in the status for good, the cause long gone.
  let answered: ForwardingStats['state'] = 'ok'
  let spoolFailed = false
  // A dead-letter write that failed: `failing` until one succeeds (or a 2xx), not merely until the
  // spool is read again. Before, every retry's request read `ok` while the disk was still full.
  let deadLetterFailed = false
  // Refusals for good (dead-lettered or dropped) since the last delivery: a sink that refuses everything said `ok`.
  let refusedInARow = 0

  let appended = false
  spool.onAppend(() => {
    appended = true
    wake()
  })

  const backoff = (ofSpool = false) => {
    const count = ofSpool ? spoolFailures++ : failures++
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(count, 30))
    return ceiling / 2 + random() * (ceiling / 2)
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      try {
        await step()
        // A step the spool saw through (its read and, after a 2xx, its cursor write). Not reset at
        // the read alone: a cursor write that fails after each 2xx would re-send the batch every second.
        spoolFailures = 0
      } catch (error) {
        // Stopping: the spool's read was interrupted (see stop()); not a spool error.
        if (stopped) return
        // The spool could not be read or its cursor written (disk trouble): try again later. Said
        // in the stats too: before, only the log did, and the status said `ok` (or the last
        // upstream answer) while nothing drained.
        const message = (error as Error).message
        log.error(`events forwarding: ${message}; retrying`)
        stats.lastError = { message: error instanceof DeadLetterWriteError ? message : `the spool: ${message}`, at: wall() }
        if (stats.state === 'ok' || stats.state === 'refusing') stats.state = 'failing'
        if (error instanceof DeadLetterWriteError) deadLetterFailed = true
        else spoolFailed = true
        await pause(backoff(true))
      }
    }
  }

  async function step(): Promise<void> {
    appended = false
    const batch = await spool.read(search ? Math.min(search.size, search.lines, limit) : limit, batchBytes)
    const lost = spool.takeLost()
    if (lost > 0) {
      stats.dropped += lost
      options.onAttempt?.('lost', lost)
    }
    // The spool answered: a `failing` of its own is over (with nothing to send, no upstream answer would end it).
    if (spoolFailed && !deadLetterFailed) stats.state = answered
    spoolFailed = false
    // An append that landed while we were reading must not be slept through.
    if (!batch) return appended ? undefined : pause()
    if (batch.events.length === 0) {
      await spool.ack(batch.next, batch.skipped)
      search = searched(search, batch.skipped)
      unreadable(batch.skipped)
      return
    }
    const n = batch.events.length
    inFlight = { events: n, answered: poster.post(batch.events) }
    const result = await inFlight.answered
    inFlight = undefined
    const status = result.status
    const delivered = status !== undefined && status >= 200 && status < 300 && !result.notSink
    // Stopping: a 2xx that came in the stop's wait is acked (else a restart sends it again); nothing else is acted on.
    if (stopped && !delivered) return
    if (delivered) {
      await spool.ack(batch.next, n + batch.skipped)
      if (search) gaveBack(search, n)
      const ended = search
      search = searched(search, n + batch.skipped)
      if (search) pieceDelivered(search, n + batch.skipped)
      const taught = ended && !search ? sizeTaught(ended) : undefined
      stats.delivered += n
      unreadable(batch.skipped)
      stats.state = answered = 'ok'
      refusedInARow = 0
      deadLetterFailed = false
      stats.lastSuccessAt = wall()
      failures = 0
      if (toldSize !== undefined && n > toldSize) toldSize = undefined // the sink's cap was raised
      if (taught !== undefined) {
        limit = taught
        fitted = 0
        if (taught !== toldSize) log.warn(`events upstream took every piece of the batch of ${ended!.batch} it refused with 400/422: no event was bad, the sink seems to take at most ~${taught} events per request; batches now go at ${taught} events (the forwarder's batchSize is ${batchSize})`)
        toldSize = taught
      } else if (limit < batchSize && ++fitted >= GROW_AFTER) {
        limit = Math.min(batchSize, limit * 2)
        fitted = 0
      }
      options.onAttempt?.('delivered', n)
      return
    }
    stats.lastError = { message: result.error ?? (result.notSink ? `${result.notSink}: not an events sink (a captive portal, a login page?)` : `HTTP ${status}`), httpStatus: status, at: wall() }
    // Every 413 is followed by a pause of the first backoff step, as a 400/422 refusal is. Before, a sink
    // answering 413 to everything (a tiny body cap) got a dozen requests per event at once: the spool dropped in minutes.
    if (status === 413 && n > 1) {
      limit = Math.ceil(n / 2)
      fitted = 0
      options.onAttempt?.('split', n)
      await pause(baseMs)
      return
    }
    if ((status === 400 || status === 422) && n > 1) {
      if (!search) search = startSearch(n, n + batch.skipped, n < limit && spool.pending() <= n + batch.skipped)
      if (search.cuts > 0) {
        // Cut at the event the sink named (the piece before it goes through, then it alone), or halve.
        cutAt(search, n, result.refused)
        // Over the size a search taught (a try at twice it) is expected: no warning of bad events.
        if (toldSize === undefined || n <= toldSize) log.warn(`events upstream refused a batch of ${n} with ${status}; sending it in pieces of ${search.size} to find the event(s) refused`)
        options.onAttempt?.('split', n)
        await pause(baseMs)
        return
      }
    }
    if (status === 413 || status === 400 || status === 422) {
      const ids = `ids ${clipped(batch.events[0].id, 64)} … ${clipped(batch.events[n - 1].id, 64)}`
      let kept = false
      if (options.deadLetter) {
        try {
          kept = await options.deadLetter.append(batch.events, { status, error: result.body, at: wall() })
        } catch (error) {
          // Kept in the spool (the cursor stays): sent again, and refused again, after the backoff.
          throw new DeadLetterWriteError(`cannot write the dead-letter file ${options.deadLetter.stats().path} (${(error as Error).message}); the ${n} event(s) refused with ${status} stay in the spool`)
        }
      }
      if (deadLetterFailed) stats.state = answered
      deadLetterFailed = false
      await spool.ack(batch.next, n + batch.skipped)
      search = searched(search, n + batch.skipped, true)
      unreadable(batch.skipped)
      if (kept) {
        log.error(`events upstream refused ${n} event(s) with ${status}; kept in the dead-letter file ${options.deadLetter!.stats().path} (${ids}); replay with \`holdfast-server events replay-dead-letters\``)
        stats.deadLettered += n
        options.onAttempt?.('dead_lettered', n)
      } else {
        const why = options.deadLetter ? `the dead-letter file ${options.deadLetter.stats().path} is full (${options.deadLetter.stats().maxBytes} bytes): replay or move it, or raise --events-dead-letter-max-bytes` : 'no dead-letter file'
        log.error(`events upstream refused ${n} event(s) with ${status}; DROPPED, ${why} (${ids})`)
        stats.dropped += n
        options.onAttempt?.('dropped', n)
      }
      if (++refusedInARow === REFUSING_AFTER) {
        log.error(`events upstream refused events for good ${REFUSING_AFTER} times in a row and took none between: state refusing (its schema or validation no longer takes what is sent?) until it takes a batch`)
      }
      // The sink answered, and for good: what an earlier 5xx or 401 said is over (a `failing` of the spool's
      // own or a taken-over spool is not the sink's to end), at the first refusal too. Before, only at the
      // second: a 401, then the one event waiting refused, left `misconfigured` for good with nothing pending.
      if (!spoolFailed && stats.state !== 'taken-over') stats.state = answered = refusedInARow >= REFUSING_AFTER ? 'refusing' : 'ok'
      // A lone event refused is one found: when the search has delivered something (the sink takes
      // some), it goes on for the rest with its whole budget; not for a sink that took nothing of it
      // or refuses everything (`refusing`), where each found alone costs log2(batch) requests (the
      // bound holds there). Before, a sink refusing one event in three without naming it spent the
      // budget on the first few: 14 of 20 good events went to the dead-letter file.
      if (search?.took && n === 1 && refusedInARow < REFUSING_AFTER) search.cuts = search.bound
      // A lone event too large says nothing of the batch size that fits: start over from batchSize, or the size a 400 search taught (not undone by it).
      if (status === 413) limit = toldSize ?? batchSize
      if (status === 413) await pause(baseMs)
      return
    }
    stats.retries++
    let delay: number
    if (result.notSink || status === 401 || status === 403 || status === 404 || status === 405 || status === 410) {
      if (stats.state !== 'misconfigured') log.error(`events upstream answered ${result.notSink ? stats.lastError.message : status}: check --events-upstream and its key; ${spool.pending()} event(s) kept in the spool`)
      stats.state = answered = 'misconfigured'
      delay = backoff()
      options.onAttempt?.('misconfigured', n)
    } else {
      if (stats.state === 'ok') log.warn(`events upstream failing (${stats.lastError.message}); ${spool.pending()} event(s) kept in the spool, retrying`)
      stats.state = answered = 'failing'
      const after = parseRetryAfter(result.retryAfter, wall(), result.date)
      // `Retry-After: 0` (or a date already past) on every answer must not make a tight loop.
      delay = after === undefined || after < baseMs ? backoff() : Math.min(after, options.maxRetryAfterMs ?? 3_600_000)
      options.onAttempt?.('retry', n)
    }
    await pause(delay)
  }

  // Unreadable spool lines skipped are dropped events: counted in the stats and told through onAttempt (the
  // metric) alike. Before, `dropped` in the status and holdfast_events_forwarded_total{outcome="dropped"} disagreed.
  function unreadable(lines: number) {
    if (lines === 0) return
    stats.dropped += lines
    options.onAttempt?.('dropped', lines)
  }

  return {
    start() {
      if (running || stopped) return
      running = loop().catch((error: unknown) => {
        log.error(`events forwarding stopped: ${(error as Error)?.stack ?? String(error)}`)
      })
    },
    async stop(now = false) {
      stopped = true
      // A read in flight may be a long recount (each call returns): ended, not waited for.
      spool.interrupt()
      stopWaiting()
      await waitOrAbort(now ? undefined : inFlight, poster.abort, log)
      poster.abort()
      await running
    },
    stats() {
      const oldest = spool.oldestAt()
      const unsaved = spool.cursorUnsaved()
      return { ...stats, ...(options.deadLetter ? { deadLetter: options.deadLetter.stats() } : {}), pending: spool.pending(), oldestAgeMs: oldest === undefined ? 0 : Math.max(0, clock.now() - oldest), ...(unsaved ? { cursorUnsaved: unsaved } : {}), ...(limit < batchSize ? { batchLimit: limit } : {}) }
    },
  }
}
