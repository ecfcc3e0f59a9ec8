import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { CorsResponse } from './http/corsResponse'
import { holdContinue } from './http/requestHandler'
import { openFlagHandler, type FlagHandler } from './flagHandler'
import type { FlagServerOptions } from './flagHandlerOptions'
import { isRelaySource } from './flags/relay'
import { readListenOptions } from './options'
import { consoleLogger, prefixLogger } from './logger'
import { SERVER_OPTION_KEYS } from './unknownOptions'

export type { FlagServerOptions } from './flagHandlerOptions'

/**
 * A running server, returned by {@link createFlagServer}: its address, and the same source,
 * metrics, events and controls as the {@link FlagHandler} behind it (documented there).
 */
export interface FlagServer
  extends Pick<FlagHandler, 'source' | 'metrics' | 'events' | 'eventsForwarding' | 'resetEvents' | 'setFlags' | 'reloadFlags' | 'outage'> {
  /** Base URL for clients, e.g. `http://127.0.0.1:8787` (no trailing slash). */
  url: string
  /** The port actually bound. */
  port: number
  /** The interface bound. */
  host: string
  /** The request handler behind the server (its source, metrics, events). */
  handler: FlagHandler
  /**
   * Drains and stops: stops accepting connections, answers new requests on open connections 503
   * (`Connection: close`), lets in-flight requests finish (up to `drainTimeoutMs`), then closes
   * every connection, the watcher and the events sink. Idempotent.
   */
  close(): Promise<void>
}

/** Default port of {@link createFlagServer} and the CLI. */
export const DEFAULT_PORT = 8787

/** Default interface of {@link createFlagServer} and the CLI. */
export const DEFAULT_HOST = '127.0.0.1'

/**
 * Starts a reference OFREP flag server with a Holdfast events sink. Resolves once it
 * listens, with the flags loaded; rejects when an option is invalid (an empty API key, say), the
 * initial flags are missing or invalid, or the port is taken.
 */
export async function createFlagServer(options: FlagServerOptions): Promise<FlagServer> {
  const listen = readListenOptions(options)
  const liveUpdates = boundStreams(options.liveUpdates, listen.maxConnections)
  const handler = await openFlagHandler({ ...options, liveUpdates }, SERVER_OPTION_KEYS)
  const asked = options.liveUpdates ? options.liveUpdates.maxConnections : undefined
  // Lowered without a word, an operator who sized --max-streams for the fleet's tabs found half of
  // them polling and nothing saying why.
  if (liveUpdates && asked !== undefined && liveUpdates.maxConnections !== undefined && asked > liveUpdates.maxConnections) {
    prefixLogger(options.logger ?? consoleLogger).warn(
      `--max-streams ${asked} (liveUpdates.maxConnections) is more than half of --max-connections ${listen.maxConnections}: ${liveUpdates.maxConnections} streams at most; raise --max-connections for more`,
    )
  }
  // No listener per request to count those in flight: on close, connections are closed as they
  // fall idle (see `close()`), which is the same wait without a cost on every answer.
  const onRequest = (req: IncomingMessage, res: ServerResponse) => handler(req, res)
  const server: Server = createServer({ connectionsCheckingInterval: Math.min(1000, listen.headersTimeoutMs), ServerResponse: CorsResponse }, onRequest)
  // `Expect: 100-continue`: the handler says "100 Continue" once the request passed its checks.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    holdContinue(res)
    onRequest(req, res)
  })
  server.maxConnections = listen.maxConnections
  server.headersTimeout = listen.headersTimeoutMs
  server.requestTimeout = Math.max(listen.requestTimeoutMs, listen.headersTimeoutMs)
  server.keepAliveTimeout = listen.keepAliveTimeoutMs
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail)
      server.listen(listen.port, listen.host, () => {
        server.off('error', fail)
        done()
      })
    })
  } catch (error) {
    await handler.close()
    throw error
  }
  const port = (server.address() as AddressInfo).port
  let closing: Promise<void> | undefined

  return {
    url: `http://${urlHost(listen.host)}:${port}`,
    port,
    host: listen.host,
    handler,
    source: handler.source,
    metrics: handler.metrics,
    events: handler.events,
    eventsForwarding: handler.eventsForwarding,
    resetEvents: handler.resetEvents,
    setFlags: handler.setFlags,
    reloadFlags: handler.reloadFlags,
    outage: handler.outage,
    close() {
      closing ??= (async () => {
        handler.drain()
        let stopped = false
        const closed = new Promise<void>((done) =>
          server.close(() => {
            stopped = true
            done()
          }),
        )
        // In-flight requests finish (streams were ended by `drain()`); each connection is closed
        // once it falls idle between requests, until none is left or the drain time is up.
        server.closeIdleConnections()
        // A monotonic clock: the wall clock set back an hour mid-drain must not hold close() an hour.
        const deadline = performance.now() + listen.drainTimeoutMs
        // Near the end, requests still waiting on the upstream are answered (as at their timeout)
        // so they finish before the cut: an upstream timeout longer than the drain was a reset.
        const answerAt = deadline - Math.min(ANSWER_BEFORE_CUT_MS, listen.drainTimeoutMs / 2)
        let answered = false
        while (!stopped && performance.now() < deadline) {
          await new Promise((done) => setTimeout(done, Math.min(DRAIN_POLL_MS, Math.max(1, (answered ? deadline : answerAt) - performance.now()))))
          if (!answered && performance.now() >= answerAt) {
            answered = true
            if (isRelaySource(handler.source)) handler.source.abandonWaits?.()
          }
          server.closeIdleConnections()
        }
        // Whatever is left is idle keep-alive sockets or requests past the drain timeout.
        server.closeAllConnections()
        await closed
        await handler.close()
      })()
      return closing
    },
  }
}

/** How often `close()` looks for connections that fell idle while draining. */
const DRAIN_POLL_MS = 20

/** How long before the drain's end requests waiting on the upstream are answered (at most half the drain). */
const ANSWER_BEFORE_CUT_MS = 500

/** The share of `maxConnections` event streams may hold: a half. */
const STREAM_SHARE = 0.5

// A stream holds its connection for as long as the tab is open. Bounded only by the hub's own cap
// (10,000 by default, over the 1,024 connections), open tabs would take every connection, and
// flag requests, events and /healthz would be refused until some left. The rest is kept for
// requests; a stream refused 503 falls back to polling.
function boundStreams(liveUpdates: FlagServerOptions['liveUpdates'], maxConnections: number): FlagServerOptions['liveUpdates'] {
  if (liveUpdates === false) return false
  const cap = Math.max(1, Math.floor(maxConnections * STREAM_SHARE))
  return { ...liveUpdates, maxConnections: Math.min(liveUpdates?.maxConnections ?? Infinity, cap) }
}

// A wildcard bind is reachable on loopback; an IPv6 literal needs brackets in a URL.
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}
