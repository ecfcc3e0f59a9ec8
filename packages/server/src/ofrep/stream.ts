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
import type { ServerResponse } from 'node:http'
import { consoleLogger, prefixLogger, type ServerLogger } from '../logger'
import { readStreamHubOptions } from '../options'
import { sayUnknownOptions, STREAM_HUB_OPTION_KEYS } from '../unknownOptions'
import { streamClientOf } from './streamClient'
import { STREAM_PATH, type StreamHub, type StreamRefusal } from './streamHub'
import type { StreamHubOptions } from './streamHubOptions'
import { OUTAGE_MEMORY_MS, watchUpstream } from './upstreamWatch'

/** Bytes a stream may have waiting to be sent (its client is not reading) before it is cut: 64 KiB. */
const MAX_UNSENT_BYTES = 64 * 1024

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
      const stop = watchUpstream({ notify: (notice, spread) => hub.notify(notice, spread), open: () => streams.size, closed: () => closed, now }, refresh, everyMs, onTaken, fleet, onNews, again)
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
