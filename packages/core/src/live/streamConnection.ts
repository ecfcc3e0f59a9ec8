// One SSE connection to the server's event stream, kept open: a `fetch`-based reader (it works
// where `EventSource` is missing, in Node, and it can send the configured headers — an API key —
// which EventSource cannot), a heartbeat watchdog, and reconnection on the shared scheduler's
// backoff (platform/scheduler.ts), so a dropped stream waits like a failed request does.
//
//   start ──► connect ──► 200 text/event-stream ──► onOpen(reconnected) ──► read …
//                │ failure / stream ends / no byte for heartbeatTimeoutMs
//                └──► onDown() ──► scheduler.failed() ──► (jittered backoff) ──► connect
//
// After a server restart every client loses its stream at the same moment; the backoff's jitter
// (and the server's `retry:`, a floor spread up to twice its value) keeps them from coming back,
// and refetching, in the same instant.
// Like all of this chunk, it imports only types from up-front code; the platform comes in `kit` (platform/kit.ts).
import type { HoldfastError } from '../platform/errors'
import type { PlatformKit } from '../platform/kit'
import type { Clock, Environment, Logger, HeadersOption } from '../types'
import { createSseParser } from './sseParser'

/** What a connection needs; the live-updates driver passes the client's own pieces. */
export interface StreamConnectionOptions {
  url: string
  fetch: typeof fetch
  headers?: HeadersOption
  clock: Clock
  random: () => number
  environment: Environment
  logger: Logger
  /** The platform pieces (platform/kit.ts), from the live loader. */
  kit: PlatformKit
  /** No byte (data or heartbeat comment) for this long: the stream is taken as dead. Default 60,000 ms (the server beats every 20 s). */
  heartbeatTimeoutMs?: number
  /** A `refetchEvaluation` notice, with the query its refetch carries (`flagConfigEtag=…&flagConfigLastModified=…`) when it names a version. */
  onNotice(version: string | undefined): void
  /** The stream is open; `reconnected` when it had been open before (changes may have been missed). */
  onOpen(reconnected: boolean): void
  /** The stream is down (it failed, ended or went silent); a reconnect is scheduled. */
  onDown(): void
}

/** A kept-open stream. */
export interface StreamConnection {
  /** Connects (idempotent while running). */
  start(): void
  /** Disconnects and cancels any reconnect; `start()` may be called again. */
  stop(): void
  /** Whether the stream is open now. */
  open(): boolean
}

/** The first reconnect delay (doubling to a minute, jittered). */
const BASE_MS = 2000

/** After this long open, a stream that ends counts as a fresh failure (backoff starts over). */
const STABLE_MS = 30_000

/** Creates a connection; nothing happens until `start()`. */
export function createStreamConnection(options: StreamConnectionOptions): StreamConnection {
  const { clock, logger } = options
  // The values, from the kit; `HoldfastError` as a type is still the one imported above.
  const { HoldfastError, httpError, parseRetryAfter, createScheduler } = options.kit
  const heartbeatMs = options.heartbeatTimeoutMs ?? 60_000
  let running = false
  let current: AbortController | undefined
  let isOpen = false
  let everOpened = false
  let retryHintMs: number | undefined
  let lastReported = ''
  /** `onDown` was told since the last open: an outage is reported once, not per reconnect. */
  let downTold = false
  /** Bumped by `stop()`: a connection of an earlier run that finishes late changes nothing. */
  let epoch = 0

  const scheduler = createScheduler({
    clock,
    environment: options.environment,
    random: options.random,
    backoff: { baseMs: BASE_MS, maxMs: 60_000 },
    run: () => void connect(),
  })

  async function connect() {
    if (!running || current) return
    const mine = epoch
    const controller = new AbortController()
    current = controller
    scheduler.began()
    let watchdog: unknown
    const arm = () => {
      if (watchdog !== undefined) clock.clearTimeout(watchdog)
      watchdog = clock.setTimeout(() => controller.abort(), heartbeatMs)
    }
    let openedAt: number | undefined
    let failure: HoldfastError
    /** A 204: WHATWG SSE says stop reconnecting (a server that will not stream for this client). */
    let refused = false
    try {
      arm()
      let configured = typeof options.headers === 'function' ? options.headers() : options.headers
      // An async token getter: awaited, and given up with the connection by the watchdog.
      if (typeof (configured as PromiseLike<unknown> | undefined)?.then === 'function')
        configured = await new Promise((ok, fail) => {
          controller.signal.onabort = fail
          ;(configured as PromiseLike<Record<string, string>>).then(ok, fail)
        })
      const response = await options.fetch(options.url, {
        headers: { ...(configured as Record<string, string> | undefined), Accept: 'text/event-stream' },
        signal: controller.signal,
        cache: 'no-store',
        // The headers are for the advertised URL only: on a redirect to another origin fetch drops
        // Authorization but keeps the rest (an X-API-Key). A redirect is refused (a failure: polling).
        redirect: options.headers && 'manual',
      })
      const type = response.headers.get('Content-Type') ?? ''
      refused = response.status == 204
      if (!response.ok || !response.body || !/^text\/event-stream/i.test(type)) {
        void response.body?.cancel().catch(() => {})
        failure = response.ok
          ? new HoldfastError('INVALID_RESPONSE', `it answered ${type || 'no content type'}`)
          : httpError(response.status, '', parseRetryAfter(response.headers.get('Retry-After'), clock.now(), response.headers.get('Date')))
      } else {
        // Open once a first line has come (the reference server sends `retry:` at once), not on
        // the headers: a proxy or server that answers 200 and then says nothing would otherwise
        // stop polling, with no notice to replace it, until the heartbeat timeout on every reconnect.
        failure = await read(response.body, (line) => {
          arm()
          if (!line || isOpen) return
          openedAt = clock.now()
          isOpen = true
          downTold = false
          lastReported = ''
          const reconnected = everOpened
          everOpened = true
          tell(() => options.onOpen(reconnected))
        })
      }
    } catch (error) {
      failure = new HoldfastError('NETWORK', `it failed: ${String((error as Error)?.message ?? error)}`)
    } finally {
      if (watchdog !== undefined) clock.clearTimeout(watchdog)
    }
    if (current === controller) current = undefined
    controller.abort()
    if (!running || mine !== epoch) return
    isOpen = false
    report(failure)
    if (!downTold) {
      downTold = true
      tell(options.onDown)
    }
    // Not dialled again until started anew (the page shown after sleeping, the stream moved); polling goes on.
    if (refused) return
    if (openedAt !== undefined && clock.now() - openedAt >= STABLE_MS) scheduler.progressed()
    scheduler.failed(withHint(failure))
  }

  /** Reads until the stream ends or fails; `alive` hears of every chunk, and whether it ended a line. */
  async function read(body: ReadableStream<Uint8Array>, alive: (line: boolean) => void): Promise<HoldfastError> {
    const reader = body.getReader()
    const decoder = new TextDecoder()
    const parser = createSseParser({
      // By `data.type` alone, whatever the `event:` field names: OFREP 0.3.0 (sseEvent) says so. A
      // vendor's `event: flagsChanged` was dropped, and with the stream open nothing polled.
      onEvent(event) {
        let data: unknown
        try {
          data = JSON.parse(event.data)
        } catch {
          return
        }
        // OFREP 0.3.0 defines `refetchEvaluation`; other types are ignored for forward compatibility.
        if (!data || typeof data !== 'object' || (data as { type?: unknown }).type !== 'refetchEvaluation') return
        // OFREP ADR-0008: the notice's `etag` and `lastModified` (epoch seconds or an ISO date) go
        // back on the refetch as `flagConfigEtag` and `flagConfigLastModified`.
        const { etag, lastModified: at } = data as { etag?: unknown; lastModified?: unknown }
        // `""` (a server without `omitempty`) names no version: sent, a server reads one never served.
        // URLSearchParams, not encodeURIComponent: a lone surrogate (JSON's `"\uD800"`, valid in a
        // notice) has no UTF-8, and encodeURIComponent threw on it inside the stream reader, which
        // dropped the stream and reconnected (after the server's `retry:`, backing off), the notice
        // lost. URLSearchParams writes it as U+FFFD, as every URL does (and a space as `+`, which
        // every query reader takes for one).
        const query = new URLSearchParams()
        if (etag && typeof etag === 'string' && etag.length <= 512) query.set('flagConfigEtag', etag)
        if (typeof at === 'number' ? at >= 0 : at && typeof at === 'string' && at.length <= 64) query.set('flagConfigLastModified', at as string)
        tell(() => options.onNotice(`${query}` || undefined))
      },
      onRetry: (ms) => (retryHintMs = Math.min(ms, 600_000)),
    })
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return new HoldfastError('NETWORK', 'it ended')
        const text = decoder.decode(value, { stream: true })
        alive(/[\r\n]/.test(text))
        if (!parser.push(text)) return new HoldfastError('INVALID_RESPONSE', 'it sent an endless line')
        if (!running) return new HoldfastError('NETWORK', 'stopped')
      }
    } catch (error) {
      return new HoldfastError('NETWORK', `it broke off: ${String((error as Error)?.message ?? error)}`)
    } finally {
      void reader.cancel().catch(() => {})
    }
  }

  // The server's `retry:` is a floor; spread up to twice it so a fleet does not come back at once.
  // One below the base delay spreads from the base: the scheduler raises any shorter wait to the
  // base itself, so `retry: 500` once brought every client of a restarted server back at exactly 2 s.
  function withHint(error: HoldfastError): HoldfastError {
    if (retryHintMs === undefined || error.retryAfterMs !== undefined) return error
    const spread = Math.round(Math.max(retryHintMs, BASE_MS) * (1 + random01(options.random)))
    return new HoldfastError(error.code, error.message, { httpStatus: error.httpStatus, retryAfterMs: spread })
  }

  function report(error: HoldfastError) {
    const key = `${error.code}:${error.httpStatus ?? ''}`
    if (key === lastReported) return
    lastReported = key
    logger.debug?.(`event stream down (${error.code}): ${error.message}; polling until it is back`)
  }

  function tell(callback: () => void) {
    try {
      callback()
    } catch (error) {
      logger.error('a live-update listener threw', error)
    }
  }

  return {
    start() {
      if (running) return
      running = true
      scheduler.start()
      void connect()
    },
    stop() {
      running = false
      epoch++
      downTold = false
      scheduler.stop()
      scheduler.reset()
      current?.abort()
      current = undefined
      isOpen = false
    },
    open: () => isOpen,
  }
}

/** `random()`, or 0.5 when it throws or leaves [0, 1] (an injected one is the app's). */
export function random01(random: () => number): number {
  try {
    const r = random()
    return r >= 0 && r <= 1 ? r : 0.5
  } catch {
    return 0.5
  }
}
