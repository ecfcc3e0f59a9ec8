import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import type { EventFileSystem } from './events/fileSystem'
import type { ReceivedEvent } from './events/schema'
import { createForwarder, type ForwarderOptions, type ForwardingStats } from './events/forwarder'
import { createEventSink, createEventsFile } from './events/sink'
import { createSpool } from './events/spool'
import type { FlagdDefinitions } from './flagDefinitions'
import { createFlagSource } from './flagSource'
import { consoleLogger, prefixLogger, type ServerLogger } from './logger'
import { createOutageControl, type OutageState } from './outage'
import { createRequestHandler } from './requestHandler'

/** Options of {@link createFlagServer}. */
export interface FlagServerOptions {
  /**
   * The flags, in the flagd format: a path to a JSON file (watched; valid edits are served within
   * 2 s, invalid ones are refused and logged) or a definitions object. Required.
   */
  flags: string | FlagdDefinitions
  /** TCP port. Default 8787; 0 picks a free one (read it back from `port` or `url`). */
  port?: number
  /** Interface to bind. Default `127.0.0.1`, so nothing outside this machine can reach it. */
  host?: string
  /**
   * JSON Lines file that accepted events are appended to (fsynced before the 202) and whose tail
   * is read back on start so de-duplication survives a restart. Default: none (memory only: the
   * dedupe window and `events()` still work, nothing is kept across restarts).
   */
  eventsFile?: string
  /** Rotate `eventsFile` once it would pass this many bytes (`--events-max-bytes`). Default: never. */
  eventsMaxBytes?: number
  /** Rotated events files kept (`events.jsonl.1` newest … `.N`); older are deleted (`--events-keep`). Default 5. */
  eventsKeep?: number
  /**
   * The de-duplication window: an event id is refused as a duplicate while it is among the last
   * `maxIds` accepted (default 100,000) and was accepted less than `windowMs` ago (default 24 h).
   * Past that, delivery is at-least-once. `now` is the clock (default `Date.now`), for tests.
   */
  eventsDedupe?: { maxIds?: number; windowMs?: number; now?: () => number }
  /**
   * The file system the events file (and spool) is written through. Default: node:fs. Tests
   * inject one that fails on cue (disk full, short writes, a failing fsync).
   */
  eventsFileSystem?: EventFileSystem
  /**
   * Forward accepted events to this upstream events endpoint (`--events-upstream URL`, e.g.
   * `https://flags.example/holdfast/v1/events`) instead of keeping them: each batch is fsynced
   * into a spool (`eventsSpoolDir`) before the 202, then delivered in batches with backoff,
   * `Retry-After` and jitter, and leaves the spool only after a 2xx (see the README, "Events
   * through the relay"). Cannot be combined with `eventsFile`. Default: none.
   */
  eventsUpstream?: string
  /** The spool directory for `eventsUpstream` (`--events-spool DIR`). Default `.holdfast/events-spool` in the working directory. */
  eventsSpoolDir?: string
  /** Headers sent with every forwarded batch (e.g. `{ Authorization: 'Bearer KEY' }`). Default none. */
  eventsUpstreamHeaders?: Record<string, string>
  /** Tuning of the forwarder (batch size, timeouts, backoff, an injected clock for tests). Default: see {@link ForwarderOptions}. */
  eventsForwarding?: Omit<ForwarderOptions, 'url' | 'spool' | 'log' | 'headers'>
  /** When set, every route except `OPTIONS` and `/healthz` needs `Authorization: Bearer KEY` or `X-API-Key: KEY`. Default: none. */
  apiKey?: string
  /** The single origin allowed by CORS. Default: any origin (`*`). */
  corsOrigin?: string
  /** Enables `/demo/outage` and `/demo/reset-events` for simulating failures. Default false (those routes are 404). */
  demoControls?: boolean
  /**
   * Validate flag files against flagd's JSON schema and refuse any that fail. Default true. With
   * false, schema problems are warned about and a flag with a broken rule answers a per-flag
   * `PARSE_ERROR`, as flagd does; broken JSON or structure is refused either way.
   */
  strictValidation?: boolean
  /** Where reloads, refused edits and failures are reported (prefixed `[holdfast-server]`). Default: the console. */
  logger?: ServerLogger
}

/** A running server, returned by {@link createFlagServer}. */
export interface FlagServer {
  /** Base URL for clients, e.g. `http://127.0.0.1:8787` (no trailing slash). */
  url: string
  /** The port actually bound. */
  port: number
  /** The interface bound. */
  host: string
  /**
   * The most recent accepted events (at most 1,000), oldest first, including those read back from
   * `eventsFile` on start. Not a history: the file is the record.
   */
  events(): ReceivedEvent[]
  /** With `eventsUpstream`: the spool and the forwarder's state (pending, oldest age, delivered, dropped, last error). */
  eventsForwarding?(): ForwardingStats
  /** Forgets every event (and empties `eventsFile`). */
  resetEvents(): Promise<void>
  /** Replaces the flag definitions in code. Throws on invalid definitions, keeping the old ones. */
  setFlags(definitions: FlagdDefinitions): void
  /** Re-reads the flags file now instead of waiting for the watcher; resolves true if it was applied. */
  reloadFlags(): Promise<boolean>
  /** The simulated outage (see `OutageState`); undefined without `demoControls`. */
  outage?: { get(): OutageState; set(change: Partial<OutageState>): OutageState }
  /** Stops listening, ends every open connection (held `hang` requests included) and stops watching. Idempotent. */
  close(): Promise<void>
}

/** Default spool directory of `eventsUpstream`, relative to the working directory. */
export const DEFAULT_SPOOL_DIR = '.holdfast/events-spool'

/** Default port of {@link createFlagServer} and the CLI. */
export const DEFAULT_PORT = 8787

/** Default interface of {@link createFlagServer} and the CLI. */
export const DEFAULT_HOST = '127.0.0.1'

/**
 * Starts a reference OFREP flag server with a Holdfast events sink (CONTRACT §8). Resolves once it
 * listens, with the flags loaded; rejects when the initial flags are missing or invalid, or the
 * port is taken.
 */
export async function createFlagServer(options: FlagServerOptions): Promise<FlagServer> {
  const log = prefixLogger(options.logger ?? consoleLogger)
  const host = options.host ?? DEFAULT_HOST
  const flags = createFlagSource({
    flags: typeof options.flags === 'string' ? resolve(options.flags) : options.flags,
    strictValidation: options.strictValidation ?? true,
    log,
  })
  if (options.eventsUpstream !== undefined && options.eventsFile !== undefined) {
    throw new Error('[holdfast-server] choose one of eventsFile (keep events here) and eventsUpstream (forward them)')
  }
  const spool =
    options.eventsUpstream === undefined
      ? undefined
      : createSpool({ dir: resolve(options.eventsSpoolDir ?? DEFAULT_SPOOL_DIR), fs: options.eventsFileSystem, now: options.eventsForwarding?.clock?.now, log })
  const forwarder =
    spool && createForwarder({ ...options.eventsForwarding, url: options.eventsUpstream!, spool, headers: options.eventsUpstreamHeaders, log })
  const store =
    spool ??
    (options.eventsFile === undefined
      ? undefined
      : createEventsFile({ path: resolve(options.eventsFile), maxBytes: options.eventsMaxBytes, keep: options.eventsKeep, fs: options.eventsFileSystem, log }))
  const sink = createEventSink({ store, dedupe: options.eventsDedupe, fs: options.eventsFileSystem, log })
  const outage = options.demoControls ? createOutageControl() : undefined
  let closing: Promise<void> | undefined

  await flags.open()
  try {
    await sink.open()
    forwarder?.start()
  } catch (error) {
    flags.close()
    throw error
  }

  const server = createServer(
    createRequestHandler({ flags, sink, outage, apiKey: options.apiKey, corsOrigin: options.corsOrigin, log, isClosing: () => closing !== undefined }),
  )
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail)
      server.listen(options.port ?? DEFAULT_PORT, host, () => {
        server.off('error', fail)
        done()
      })
    })
  } catch (error) {
    flags.close()
    await forwarder?.stop()
    await sink.close()
    throw error
  }
  const port = (server.address() as AddressInfo).port

  return {
    url: `http://${urlHost(host)}:${port}`,
    port,
    host,
    events: () => sink.recent(),
    eventsForwarding: forwarder && (() => forwarder.stats()),
    resetEvents: () => sink.reset(),
    setFlags: (definitions) => flags.set(definitions),
    reloadFlags: () => flags.reload(),
    outage: outage && { get: outage.get, set: outage.set },
    close() {
      closing ??= (async () => {
        flags.close()
        const stopped = new Promise<void>((done) => server.close(() => done()))
        // server.close() only stops accepting; idle keep-alive sockets and held requests would keep
        // it open until clients give up, so end them now.
        server.closeAllConnections()
        outage?.release()
        await stopped
        await forwarder?.stop()
        await sink.close()
      })()
      return closing
    },
  }
}

// A wildcard bind is reachable on loopback; an IPv6 literal needs brackets in a URL.
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}
