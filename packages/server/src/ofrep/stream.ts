// The OFREP event stream (OFREP 0.3.0, ADR-0008): `GET /holdfast/v1/stream` is a Server-Sent
// Events stream that tells connected clients "the definitions changed, refetch". It carries no flag
// values — the client refetches through its normal bulk request, with the notice's `etag` as
// `flagConfigEtag`, so what a user may see is still decided per context by the bulk route.
//
//   source 'update' ──► notice(etag) ──► every open stream: data: {"type":"refetchEvaluation",...}
//   source failing … then 'update' (an outage ended) ──► each stream gets its notice after a random
//                                                        delay in [0, recoveryWindowMs)
//
// The spreading is what keeps a fleet of browsers from refetching in the same instant when an
// upstream comes back: N streams → N refetches spread evenly over the window instead of a spike.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { FlagSource } from '../flags/flagSource'
import { consoleLogger, prefixLogger, type ServerLogger } from '../logger'
import { readStreamHubOptions } from '../options'
import { sayUnknownOptions, STREAM_HUB_OPTION_KEYS } from '../unknownOptions'

/** An update within this long of a failed read of the origin counts as the end of an outage. */
const OUTAGE_MEMORY_MS = 60_000

/**
 * Answers another relay found changed come one context at a time (a round of thousands): those
 * taken within this long make one notice, not one per context.
 */
const TAKEN_GATHER_MS = 250

/** Bytes a stream may have waiting to be sent (its client is not reading) before it is cut: 64 KiB. */
const MAX_UNSENT_BYTES = 64 * 1024

/** The path of the stream, as advertised in bulk answers (`eventStreams[].endpoint.requestUri`). */
export const STREAM_PATH = '/holdfast/v1/stream'

/** Options of {@link createStreamHub}; every one has a default. */
export interface StreamHubOptions {
  /** Most streams open at once; more get 503 with `Retry-After`. Default 10,000. */
  maxConnections?: number
  /**
   * Most streams one client may hold open at once (`--max-streams-per-client`); more get the 503 of
   * `maxConnections`. A client is its remote address, an IPv6 one by its /64 (see
   * {@link streamClientOf}); a stream with no socket (a Web `Request` adapter) counts toward no
   * client (the handler's logger is told so once). Default: none. Behind a proxy or a load balancer every stream comes from its address:
   * leave it unset there and bound each client at the proxy (nginx `limit_conn`), or the relay
   * refuses its own users.
   */
  maxConnectionsPerClient?: number
  /** A comment line is sent this often so proxies and clients know the stream is alive. Default 20,000 ms; 1,000 to 30,000 (clients and proxies drop a stream silent for 60 s). */
  heartbeatMs?: number
  /** The `retry:` field: how long a browser's EventSource waits before reconnecting. Default 3,000 ms. */
  retryMs?: number
  /** After an outage of the source ends, notices are spread at random over this window. Default 10,000 ms. */
  recoveryWindowMs?: number
  /** `inactivityDelaySec` advertised to clients (close the stream after this long hidden). Default 120. */
  inactivityDelaySec?: number
  /** Jitter source. Default `Math.random`. */
  random?: () => number
  /**
   * The clock of "an outage within the last minute" (ms; only differences are read). Default
   * `performance.now()`, a monotonic clock: on the wall clock, NTP stepping it forward an hour
   * between a failure and the recovery made the outage look an hour old, so the recovery's notice
   * went to every stream at once (every tab refetching in the same instant); set back an hour, an
   * ordinary edit up to an hour later was held back as if it ended an outage.
   */
  now?: () => number
  /**
   * The path (and query) advertised as `eventStreams[].endpoint.requestUri`, joined by clients to
   * the origin of their OFREP URL. Default `/holdfast/v1/stream` under the path the handler is
   * mounted at, as the host says it (Express `app.use('/flags', handler)`: `req.baseUrl`;
   * `toFetchHandler` with a `basePath`): `/flags/holdfast/v1/stream`. Set it where a host cuts a
   * prefix without saying so (Fastify's rewrite in docs/server.md, a proxy).
   */
  requestUri?: string
}

/** One change notice (the `data` of an OFREP `sseEvent`). */
export interface StreamNotice {
  /** Always `refetchEvaluation`: the client should ask for its values again (with its ETag). */
  type: 'refetchEvaluation'
  /** The definitions version now served; clients send it back as `flagConfigEtag`. */
  etag?: string
  /** Epoch seconds of the change. */
  lastModified?: number
}

/**
 * Proxy mode with `--redis`: whether event streams are open anywhere in the fleet. Behind a load
 * balancer a tab's stream may be on relay B while only relay A, which took its bulk requests,
 * knows its context (the store holds hashes, never a raw context or credentials): A must re-ask
 * while B has streams open, or the change is never found and the tab (which does not poll while
 * its stream is open) keeps the old value for good.
 */
export interface FleetStreams {
  /** Says, for `ttlMs`, that this relay has streams open (fire and forget; said again every interval). */
  announce(ttlMs: number): void
  /** Whether this relay has anything to re-ask and another relay said it has streams open within its TTL. */
  anyOpen(): Promise<boolean>
}

/** The SSE side of the server; see the file comment. */
export interface StreamHub {
  /** Answers `GET /holdfast/v1/stream`. */
  handle(req: IncomingMessage, res: ServerResponse): void
  /** Sends a notice to every open stream; `spread` delays each by a random share of the recovery window. */
  notify(notice: StreamNotice, spread?: boolean): void
  /** Open streams now. */
  connections(): number
  /** Notices sent since the start (one per stream per change). */
  sent(): number
  /** Streams refused since the start: past `maxConnections`, or past `maxConnectionsPerClient` for their client. */
  refused(): Record<StreamRefusal, number>
  /** The `eventStreams` entry bulk answers carry; `mount` (a path the handler is mounted at) goes before the default `requestUri`. */
  advertisement(mount?: string): Array<Record<string, unknown>>
  /** Listens to a definitions source: updates become notices, spread when they end an outage. Returns the unsubscribe. */
  follow(source: FlagSource): () => void
  /**
   * Proxy mode (`--upstream`): the relay holds per-context answers and learns of upstream changes
   * only by asking. While at least one stream is open, `refresh` (the relay's re-ask of every held
   * context) runs every `everyMs`; a refresh that changed anything becomes a notice (spread when it
   * ends a failing spell). With `--redis`, `onTaken` tells of changes another relay found (its
   * answers taken from the store): those taken within {@link TAKEN_GATHER_MS} make one notice, and
   * `fleet` keeps the rounds going while streams are open on another relay only. `onNews` tells of a
   * change a round found as it finds it (gathered as the taken ones are); without it, a round's
   * changes make one notice when the round ends. `again`, at each tick that finds a round still
   * running: has it ask the users seen most recently again (so they are asked each interval,
   * however long a round over every held context lasts).
   * Returns the stop function.
   */
  watchUpstream(refresh: () => Promise<{ outcome: string; changed: string[]; answered?: number }>, everyMs: number, onTaken?: (listener: () => void) => () => void, fleet?: FleetStreams, onNews?: (listener: () => void) => () => void, again?: () => void): () => void
  /** Ends every open stream and refuses new ones (drain, shutdown). Idempotent. */
  close(): void
}

/** Why a stream was refused 503: the global cap, or its client's share. */
export type StreamRefusal = 'max-streams' | 'per-client'

/**
 * Who a stream counts toward for `maxConnectionsPerClient`: its remote address, an IPv4-mapped one
 * as IPv4, an IPv6 one by its /64 (the smallest prefix a network hands one host: counted by
 * address, one machine would have 2^64 shares). Undefined without an address.
 */
export function streamClientOf(address: string | undefined): string | undefined {
  if (!address) return undefined
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1]
  if (!address.includes(':')) return address
  const [head, tail] = address.replace(/%.*$/, '').split('::') as [string, string | undefined]
  const front = head === '' ? [] : head.split(':')
  const back = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? front : [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back]
  return `${groups.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(':')}::/64`
}

/**
 * Creates the stream hub of one handler. Nothing runs until a stream is opened. `log` (default
 * none) hears what an operator must know of the streams: `maxConnectionsPerClient` bounding nothing
 * where streams come with no remote address. An option key it does not take (`heartbeatMS`) is
 * said once, as createFlagServer says one under `liveUpdates`: on `log`, or with none on the
 * console (the server's default logger).
 */
export function createStreamHub(given: StreamHubOptions = {}, log?: ServerLogger): StreamHub {
  if (typeof given === 'object' && given !== null) sayUnknownOptions(given, STREAM_HUB_OPTION_KEYS, log ?? prefixLogger(consoleLogger))
  return openStreamHub(given, log)
}

/** {@link createStreamHub} without the word on unknown keys: the handler's `liveUpdates`, whose keys it has said already. */
export function openStreamHub(given: StreamHubOptions = {}, log?: ServerLogger): StreamHub {
  // `liveUpdates: true` (as the client's option reads) reaches here from createFlagHandler: the defaults.
  const options = readStreamHubOptions(typeof given === 'object' && given !== null ? given : {})
  // Checked above (whole numbers within bounds, or absent): only the defaults are left to fill in.
  const maxConnections = options.maxConnections ?? 10_000
  const maxPerClient = options.maxConnectionsPerClient
  const heartbeatMs = options.heartbeatMs ?? 20_000
  const retryMs = options.retryMs ?? 3_000
  const windowMs = options.recoveryWindowMs ?? 10_000
  const inactivityDelaySec = options.inactivityDelaySec ?? 120
  const random = options.random ?? Math.random
  const now = options.now ?? (() => performance.now())
  const streams = new Set<ServerResponse>()
  // With maxPerClient: each open stream's client, and how many each client holds.
  const clientOf = new Map<ServerResponse, string>()
  const perClient = new Map<string, number>()
  const refusedBy: Record<StreamRefusal, number> = { 'max-streams': 0, 'per-client': 0 }
  let saidUncounted = false
  // Per stream, the spread notice not yet sent: a later one replaces its text instead of queueing
  // another, so an origin that flaps (every answer ends an outage) costs a client one refetch per
  // window, not one per flap.
  const pending = new Map<ServerResponse, { timer: ReturnType<typeof setTimeout>; text: string }>()
  const stops = new Set<() => void>()
  let heartbeat: ReturnType<typeof setInterval> | undefined
  let sentCount = 0
  let closed = false

  function write(res: ServerResponse, text: string) {
    if (res.destroyed || res.writableEnded) return drop(res)
    res.write(text)
    // A client that stopped reading (a frozen tab, a dead proxy, a hostile client) would have
    // every later notice and heartbeat queued in this process for as long as its socket stays
    // open. Past the bound it is cut; if it is alive it reconnects, and catches up with one refetch.
    if (res.writableLength > MAX_UNSENT_BYTES) {
      res.destroy()
      drop(res)
    }
  }

  function drop(res: ServerResponse) {
    streams.delete(res)
    const client = clientOf.get(res)
    if (client !== undefined) {
      clientOf.delete(res)
      const held = (perClient.get(client) ?? 1) - 1
      if (held > 0) perClient.set(client, held)
      else perClient.delete(client)
    }
    const waiting = pending.get(res)
    if (waiting) clearTimeout(waiting.timer)
    pending.delete(res)
    if (streams.size === 0 && heartbeat !== undefined) {
      clearInterval(heartbeat)
      heartbeat = undefined
    }
  }

  const hub: StreamHub = {
    handle(req, res) {
      // The client already left (it reset while an app's async middleware ran): its 'close' has
      // been and gone, so it would be counted as open, toward the cap, until a heartbeat found it.
      if (res.destroyed || req.socket?.destroyed) return
      if (closed) return void sendPlain(res, 503, 'the server is shutting down', { 'Retry-After': '1', Connection: 'close' })
      // Spread the retries of the refused: a fixed Retry-After would bring them all back at once.
      const refuse = (reason: StreamRefusal, message: string) => {
        refusedBy[reason]++
        sendPlain(res, 503, message, { 'Retry-After': String(5 + Math.floor(random() * 25)) })
      }
      if (streams.size >= maxConnections) return refuse('max-streams', 'too many streams open')
      // One address could hold every stream up to the cap, and every other user's got 503.
      const client = maxPerClient === undefined ? undefined : streamClientOf(req.socket?.remoteAddress)
      if (client !== undefined && (perClient.get(client) ?? 0) >= maxPerClient!) return refuse('per-client', 'too many streams open from this client')
      // Behind a Web `Request` adapter (toFetchHandler) there is no socket, so nothing to count by:
      // served, as the option says, but an operator who set the bound in a route handler believed
      // it held. Said once.
      if (maxPerClient !== undefined && client === undefined && !saidUncounted) {
        saidUncounted = true
        log?.warn(
          `liveUpdates.maxConnectionsPerClient (--max-streams-per-client) bounds nothing here: a stream came with no remote address (a Web Request adapter such as toFetchHandler), so it counts toward no client; bound each client's streams in front of this handler`,
        )
      }
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        // nginx and similar proxies buffer responses unless told not to.
        'X-Accel-Buffering': 'no',
      })
      // Streams outlive the server's request timeout by design. (No socket behind a Web `Request`
      // adapter such as toFetchHandler.)
      req.socket?.setTimeout?.(0)
      req.socket?.setNoDelay?.(true)
      streams.add(res)
      if (client !== undefined) {
        clientOf.set(res, client)
        perClient.set(client, (perClient.get(client) ?? 0) + 1)
      }
      res.write(`retry: ${retryMs}\n: holdfast stream open\n\n`)
      res.once('close', () => drop(res))
      heartbeat ??= setInterval(() => {
        for (const stream of [...streams]) write(stream, ': ping\n\n')
      }, heartbeatMs)
      heartbeat.unref?.()
    },
    notify(notice, spread = false) {
      const text = `data: ${JSON.stringify(notice)}\n\n`
      for (const stream of [...streams]) {
        if (!spread || windowMs === 0) {
          sentCount++
          write(stream, text)
          continue
        }
        const waiting = pending.get(stream)
        if (waiting) {
          waiting.text = text
          continue
        }
        const timer = setTimeout(() => {
          const { text: newest } = pending.get(stream)!
          pending.delete(stream)
          sentCount++
          write(stream, newest)
        }, Math.floor(random() * windowMs))
        timer.unref?.()
        pending.set(stream, { timer, text })
      }
    },
    connections: () => streams.size,
    sent: () => sentCount,
    refused: () => ({ ...refusedBy }),
    advertisement: (mount = '') => [{ type: 'sse', endpoint: { requestUri: options.requestUri ?? mount + STREAM_PATH }, inactivityDelaySec }],
    follow(source) {
      // An update that ends an outage (the origin could not be read within the last minute, or
      // nothing was served yet) has its notices spread; an ordinary edit goes out at once.
      // A local file has no outages, only edits (an editor that saves by renaming may make one
      // read fail on the way): its notices always go out at once.
      const remote = source.origin !== 'file' && source.origin !== 'inline'
      let lastErrorAt = source.current() ? -Infinity : now()
      return source.subscribe((event) => {
        if (event.type === 'error') lastErrorAt = now()
        if (event.type !== 'update') return
        const spread = remote && now() - lastErrorAt < OUTAGE_MEMORY_MS
        lastErrorAt = -Infinity
        hub.notify({ type: 'refetchEvaluation', etag: event.version.version, lastModified: Math.floor(event.version.fetchedAt / 1000) }, spread)
      })
    },
    watchUpstream(refresh, everyMs, onTaken, fleet, onNews, again) {
      let failing = false
      // When a round last failed, as `follow` remembers an error: the change that ends the spell
      // may come a moment after this relay's own round found the upstream back (with --redis, as
      // an answer another relay got, taken from the store), and is spread all the same.
      let failedAt = -Infinity
      const spread = () => {
        const ends = failing || now() - failedAt < OUTAGE_MEMORY_MS
        failedAt = -Infinity
        return ends
      }
      const failed = () => {
        failing = true
        failedAt = now()
      }
      let running = false
      // Behind a load balancer a tab's stream and its bulk requests may be on different relays:
      // the change another relay found reaches this one only as an answer taken from the store,
      // after which this relay's own round finds nothing changed. Announced here, or never.
      let gather: ReturnType<typeof setTimeout> | undefined
      const gathered = () => {
        if (closed || streams.size === 0) return
        gather ??= setTimeout(() => {
          gather = undefined
          hub.notify({ type: 'refetchEvaluation', lastModified: Math.floor(Date.now() / 1000) }, spread())
        }, TAKEN_GATHER_MS)
        gather.unref?.()
      }
      const untake = onTaken?.(gathered)
      // A round of 10,000 contexts at 2 s an answer lasts about 80 minutes: a change it finds in its
      // first answers went out as a notice only at its end.
      const unnews = onNews?.(gathered)
      const interval = Math.max(50, everyMs)
      // Said every interval, kept for three and a second more: a tick or two that Redis misses
      // does not stop the other relays' rounds, and they stop within that once the last stream closes.
      const signalTtl = 3 * interval + 1000
      const timer = setInterval(() => {
        if (closed) return
        const own = streams.size > 0
        // Said even while a round runs: a round of thousands of contexts outlasts the signal, and
        // the other relays would stop asking theirs until it ended.
        if (own) fleet?.announce(signalTtl)
        // A round over thousands of contexts outlasts many ticks, and asks each once: a change made
        // for an open tab's user just after the round asked them waited for the round to end.
        if (running) again?.()
        if (running || (!own && !fleet)) return
        running = true
        ;(own ? Promise.resolve(true) : fleet!.anyOpen().catch(() => false))
          .then((open) => (open && !closed ? refresh() : undefined))
          .then((result) => {
            if (!result) return
            // Also from a round that ended failed (at an upstream that died halfway): the contexts
            // it did get are held now, so the next round sees no change in them to announce.
            if (result.changed.length > 0 && !onNews) hub.notify({ type: 'refetchEvaluation', lastModified: Math.floor(Date.now() / 1000) }, spread())
            // A round that ended at one context's failure while the upstream answered others in it
            // (a rule that crashes on one user's attributes) is no outage: counted as one, every
            // change found within a minute after such a round was spread over the recovery window
            // (0-10 s late, 5 s on average), for as long as the rounds kept meeting that context.
            if (result.outcome === 'failed' && !(result.answered! > 0)) failed()
            else failing = false
          })
          .catch(failed)
          .finally(() => (running = false))
      }, interval)
      timer.unref?.()
      const stop = () => {
        clearInterval(timer)
        clearTimeout(gather)
        untake?.()
        unnews?.()
      }
      stops.add(stop)
      return stop
    },
    close() {
      if (closed) return
      closed = true
      for (const stop of stops) stop()
      for (const { timer } of pending.values()) clearTimeout(timer)
      pending.clear()
      // A stream with bytes still waiting (its client stopped reading) could never finish: it
      // would hold a server's drain until the drain timeout. Cut it; end the others cleanly.
      for (const stream of [...streams]) {
        if (stream.writableLength > 0) stream.destroy()
        else stream.end()
      }
      streams.clear()
      clientOf.clear()
      perClient.clear()
      if (heartbeat !== undefined) clearInterval(heartbeat)
      heartbeat = undefined
    },
  }
  return hub
}

function sendPlain(res: ServerResponse, status: number, message: string, headers: Record<string, string>) {
  const body = JSON.stringify({ errorDetails: message })
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)) })
  res.end(body)
}

/**
 * Adds the stream's figures to a Prometheus registry: `holdfast_stream_connections` (open now),
 * `holdfast_stream_notices_total` (notices written, one per stream per change) and
 * `holdfast_stream_refused_total{reason}` (streams refused 503: `max-streams`, `per-client`). A
 * registry that already has them (shared by two handlers) keeps the first handler's.
 */
export function registerStreamMetrics(registry: Registry, hub: StreamHub): void {
  if (!registry.getSingleMetric('holdfast_stream_connections')) {
    new Gauge({
      name: 'holdfast_stream_connections',
      help: 'Event streams (SSE) open now.',
      registers: [registry],
      collect() {
        this.set(hub.connections())
      },
    })
  }
  if (!registry.getSingleMetric('holdfast_stream_notices_total')) {
    let reported = 0
    new Counter({
      name: 'holdfast_stream_notices_total',
      help: 'Change notices written to event streams (one per stream per change).',
      registers: [registry],
      collect() {
        const sent = hub.sent()
        if (sent > reported) this.inc(sent - reported)
        reported = sent
      },
    })
  }
  if (!registry.getSingleMetric('holdfast_stream_refused_total')) {
    const reported: Record<StreamRefusal, number> = { 'max-streams': 0, 'per-client': 0 }
    new Counter({
      name: 'holdfast_stream_refused_total',
      help: 'Event streams refused 503, by reason: max-streams (every stream taken), per-client (the client holds --max-streams-per-client).',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        const refused = hub.refused()
        for (const reason of ['max-streams', 'per-client'] as const) {
          // Both series from the start, so a rate() over them has a zero to start from.
          this.inc({ reason }, refused[reason] - reported[reason])
          reported[reason] = refused[reason]
        }
      },
    })
  }
}
