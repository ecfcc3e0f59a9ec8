// One pass over the shared event queue: under the flush lock, list what is queued (this tab's
// events and other tabs'), send it oldest first in batches, and take each batch out of storage
// once the receiver answered. A 413 splits the batch in halves, recursively; a permanent
// rejection drops it (counted), so one poison batch cannot block the rest; a transient failure
// ends the pass and is handed back to the queue, which decides when to try again; so does a
// refusal (the URL or the key is wrong), which keeps the events. An event that cannot be serialised
// or that the sink's limits refuse (an over-long name, a value nested too deep) is dropped alone
// before its batch goes out.
import type { HoldfastError } from '../../platform/errors'
import type { PlatformKit } from '../../platform/kit'
import type { Clock, Logger, HeadersOption } from '../../types'
import type { EventCounts } from '../eventQueue'
import { overLimits } from './eventLimits'
import { postEvents, splitForKeepalive } from './eventTransport'
import type { FlushLock } from './flushLock'
import type { StoreReader, StoredEvent } from './storeReader'

/** How one pass runs: why it was started decides keepalive, how long to wait for the lock, and when to stop. */
export interface PassOptions {
  /** The page is going away: `fetch` with keepalive, each body under 64 KB. */
  keepalive: boolean
  /** How long to wait for another tab's flush to finish; 0 skips when one is running. */
  waitMs: number
  /** No request starts after this (close). */
  deadline: number
  /** Checked before every batch: false ends the pass early (the client closed meanwhile). */
  proceed: () => boolean
}

/** How a pass ended, for delivery to decide the next step. */
export interface PassResult {
  /** Anything left the queue (sent or dropped). */
  progressed: boolean
  /** `done`: everything listed went through; `failed`: a transient failure (`error`) ended it;
   * `busy`: another flusher held the lock; `stopped`: closing, aborted or lock lost. */
  outcome: 'done' | 'failed' | 'busy' | 'stopped'
  error?: HoldfastError
}

/** What a flusher works with: the queue, the cross-tab lock, the receiver, the counts. */
export interface FlusherOptions {
  store: StoreReader
  lock: FlushLock
  batchSize: number
  url: string
  fetch: typeof fetch
  headers?: HeadersOption
  requestTimeoutMs: number
  clock: Clock
  logger: Logger
  /** Aborts requests in flight (close ran out of time). */
  signal: AbortSignal
  /** Counts of events, moved here and reported through `report`. */
  counts: EventCounts
  report: () => void
  /** The platform pieces (platform/kit.ts), from the queue. */
  kit: PlatformKit
}

/** Deliveries in a row at a size a 413 taught before trying twice that size. */
const GROW_AFTER = 16

/** Creates the pass runner of one queue. */
export function createFlusher(options: FlusherOptions) {
  const { store, clock, counts } = options
  /** Events whose last attempt failed: sending them again is a retry. */
  const failed = new Set<string>()
  /** The largest batch the receiver took since its last 413: later batches go no bigger, so a
   * backlog costs one round of refused uploads, not a round per batch. */
  let fit = options.batchSize
  /** Deliveries in a row since `fit` was last set. After GROW_AFTER, `fit` doubles (up to
   * batchSize), as the relay's forwarder does: a receiver whose cap was raised is not sent small
   * batches for the rest of the page, and one that was not costs one refused upload per round. */
  let fitted = 0
  /** Whether a tab is sending the queue, as this page last knew it: 0 none, 1 this page (it holds
   * the lock now), 2 another tab (it held the lock at this page's last ask). See `leave`. */
  let sending = 0
  /** Lone events the receiver found too large (413) in this pass, kept until it takes a request
   * (then they were too large: dropped) or refuses a second lone one (it refuses everything). */
  let held: string[] = []
  /** The receiver took a request in this pass. */
  let took = false
  /** The 413 of the first lone event held. */
  let refusal: HoldfastError | undefined

  async function run(pass: PassOptions): Promise<PassResult> {
    const result: PassResult = { progressed: false, outcome: 'stopped' }
    if (options.signal.aborted) return result
    // Away, the lock would say busy anyway: not one storage step (see `FlushLock.isAway`).
    if (options.lock.isAway()) return { progressed: false, outcome: 'busy' }
    if ((await store.list()).length === 0) return { progressed: false, outcome: 'done' }
    const got = await options.lock.run(async (keep) => {
      sending = 1
      held = []
      took = false
      refusal = undefined
      // Listed again under the lock: what another tab sent in the meantime is gone by now.
      const keys = await store.list()
      const listed = new Set(keys)
      for (const key of failed) if (!listed.has(key)) failed.delete(key)
      for (let i = 0; i < keys.length; i += options.batchSize) {
        if (options.signal.aborted || clock.now() >= pass.deadline || !pass.proceed() || !(await keep())) return
        const read = await store.read(keys.slice(i, i + options.batchSize))
        if (read.corrupt.length > 0) await drop(read.corrupt, `${read.corrupt.length} unreadable stored events`)
        const events = await sendable(read.events)
        for (const group of pass.keepalive ? splitForKeepalive(events) : events.length ? [events] : []) {
          const sent = await send(group, pass)
          if (sent !== true) {
            if (sent) Object.assign(result, { outcome: 'failed', error: sent })
            return
          }
          result.progressed = true
        }
      }
      // A lone event refused and nothing taken: no telling it from a receiver that refuses everything.
      // It is kept, and asked again on the backoff (a receiver fixed meanwhile takes it).
      if (held.length) return void Object.assign(result, { outcome: 'failed', error: fail(held, refusal!) })
      result.outcome = 'done'
    }, pass.waitMs).finally(() => (sending = 0))
    // Not got: another tab holds the lock, and sends this page's events too (see `leave`). A pass
    // that threw sends nothing any more: `leave` must not wait on it.
    if (!got) sending = 2
    if (!got) result.outcome = 'busy'
    return result
  }

  /** One request (or several after a 413): true to go on, an error to retry later, false to stop. */
  async function send(items: StoredEvent[], pass: PassOptions): Promise<true | false | HoldfastError> {
    const n = fit
    if (items.length > n) {
      const first = await send(items.slice(0, n), pass)
      return first === true ? send(items.slice(n), pass) : first
    }
    const keys = items.map((item) => item.key)
    const resent = keys.filter((key) => failed.has(key)).length
    if (resent > 0) {
      counts.retries += resent
      counts.retriedRequests++
      options.report()
    }
    const result = await postEvents({
      fetch: options.fetch,
      url: options.url,
      headers: options.headers,
      body: JSON.stringify({ events: items.map((item) => item.event) }),
      timeoutMs: Math.max(1, Math.min(options.requestTimeoutMs, pass.deadline - clock.now())),
      keepalive: pass.keepalive,
      signal: options.signal,
      clock,
      kit: options.kit,
    })
    // A lone event too large, while the receiver took nothing in this pass: the event, or a receiver
    // (a WAF, a proxy's body cap) that refuses every request? It is held, and the pass goes on: a
    // request taken says the event was too large (dropped then); a second lone one refused says the
    // receiver refuses everything (all kept, the pass backs off as for a 5xx). Before, a lone 413 was
    // dropped at once: 10,000 queued was 20,000 requests in seconds and all of it lost; then one
    // event lost a pass, every event of an app that calls flush() after each one.
    if (result.kind == 'too-large' && items.length < 2 && !took) {
      held.push(...keys)
      refusal ??= result.error
      // Later batches go at full size again: one lone event says nothing of the size that fits.
      if (held.length < 2) return (fit = options.batchSize), true
      return fail(held, result.error)
    }
    switch (result.kind) {
      case 'ok':
        for (const key of keys) failed.delete(key)
        took = true
        if (held.length) await drop(held.splice(0), 'an event the receiver finds too large (HTTP 413)')
        // Timeline: a batch goes out; the app logs past maxQueued meanwhile and the bound pushes
        // the batch's events out of the queue (counted in `dropped`); then the receiver takes
        // them. They were delivered: `sent`, and no longer `dropped` (before, both: the counts
        // added up to more than was logged, and an operator read a loss that never was).
        counts.dropped -= keys.length - store.queued(keys)
        counts.sent += items.length
        delete counts.lastError
        if (++fitted >= GROW_AFTER) (fit = Math.min(options.batchSize, fit * 2)), (fitted = 0)
        await store.remove(keys)
        return true
      case 'too-large': {
        // A lone event too large says nothing of the batch size that fits.
        if (items.length === 1) return (fit = options.batchSize), drop(keys, 'an event the receiver finds too large (HTTP 413)')
        for (const key of keys) failed.add(key)
        fit = Math.ceil(items.length / 2)
        fitted = 0
        return send(items, pass)
      }
      case 'rejected':
        return drop(keys, `a batch of ${items.length} events the receiver rejected (${result.error.message})`)
      case 'refused':
      case 'retry':
        return fail(keys, result.error)
      case 'aborted':
        return false
    }
  }

  /**
   * The events the sink can take: one whose JSON cannot be written (an older page may have stored
   * it) or that the sink's limits refuse is dropped alone, not with the batch its 400 would take.
   */
  async function sendable(events: StoredEvent[]): Promise<StoredEvent[]> {
    const ok: StoredEvent[] = []
    const bad: string[] = []
    for (const item of events) {
      let fits = false
      try {
        fits = JSON.stringify(item.event) !== undefined && !overLimits(item.event)
      } catch {
        // not JSON (a BigInt, a cycle): dropped
      }
      if (fits) ok.push(item)
      else bad.push(item.key)
    }
    // Not awaited: the removal is a storage step, which a page being unloaded never sees end (`leave`).
    if (bad.length > 0) void drop(bad, `${bad.length} events the receiver would refuse (over its limits, or not JSON)`)
    return ok
  }

  /** A transient failure: `keys` are retries next time, and the error is reported. */
  function fail(keys: string[], error: HoldfastError): HoldfastError {
    for (const key of keys) failed.add(key)
    counts.lastError = options.kit.toStatusError(error)
    options.report()
    return error
  }

  async function drop(keys: string[], what: string): Promise<true> {
    options.logger.warn(`dropped ${what}`)
    for (const key of keys) failed.delete(key)
    // Those the bound pushed out while their request was out are counted already.
    counts.dropped += store.queued(keys)
    await store.remove(keys)
    return true
  }

  /**
   * The page is being unloaded (closed, or left without the back/forward cache): no storage step,
   * lock grant or timer of it runs again, so `run`, which lists storage and takes the lock first,
   * never gets to send. `own` (the keys of this page's events) goes at once in one keepalive
   * request (the browser takes 64 KB in flight); the rest stays stored for the next page. Without
   * the lock (its grant would never run now), so only when no tab was sending as this page last
   * knew it; one that takes the lock at that very moment may send some of them too: the same ids.
   */
  const leave = async (own: string[]) => {
    // Two tabs must not send the same events at once (CONTRACT §6): while another tab sends, it
    // sends these too, and it is not leaving. While this page sends, its requests out are cut
    // short now and the lock is let go: a tab still open takes the queue over, these included,
    // or the next page does.
    if (sending) return
    // Read from memory: they are this page's.
    const [group] = splitForKeepalive(await sendable((await store.read(own)).events))
    if (group) await send(group, { keepalive: true, deadline: Infinity } as PassOptions)
  }

  return { run, leave }
}
