// The options of the request handler (flagHandler.ts) and, with the listening ones
// (flagServer.ts), of the server, in a module of their own: unknownOptions.ts lists their keys
// (checked against these types), and took them from flagHandler.ts and flagServer.ts, which take
// that list from it: an import cycle.
import type { EventsOptions } from './events/eventsOptions'
import type { FlagdDefinitions } from './flags/flagDefinitions'
import type { FlagSource } from './flags/flagSource'
import type { RelayOptions } from './flags/relayOptions'
import type { Middleware, Route } from './http/requestHandler'
import type { ServerLogger } from './logger'
import type { ServerMetrics } from './metrics'
import type { RequestLimits } from './ofrep/schemas'
import type { StreamHubOptions } from './ofrep/streamHubOptions'

/** Options of `createFlagHandler` (and, with the listening options, of `createFlagServer`). */
export interface FlagHandlerOptions extends RelayOptions, EventsOptions {
  /**
   * The flags, in the flagd format: a path to a JSON file (watched; valid edits are served within
   * 2 s, invalid or gutted ones are refused and logged) or a definitions object. Exactly one of
   * `flags`, `flagsUrl`, `upstream` or `source` is required. Default: none.
   */
  flags?: string | FlagdDefinitions
  /** Advanced: any {@link FlagSource} (an HTTP URL, an upstream, your own). Takes the place of `flags`. Default: none. */
  source?: FlagSource
  /**
   * When set, every route except `OPTIONS` preflights, `/`, `/healthz`, `/readyz` and `/metrics`
   * needs `Authorization: Bearer KEY` or `X-API-Key: KEY`. Default: none. An empty or blank key is
   * refused (the server does not start): fail closed, never open. So is a misspelt one (`apiKEy`,
   * `api_key`, `appKey`) given without `apiKey`; `false` runs without a key on purpose (behind a
   * gateway that checks keys), and a key named like it is then only warned about.
   */
  apiKey?: string | false
  /** The single origin allowed by CORS. Default: any origin (`*`). */
  corsOrigin?: string
  /** Adds the demo outage controls (`/demo/outage`, `/demo/reset-events` and their middleware). Default false: absent. */
  demoControls?: boolean
  /**
   * Validate flag files against flagd's JSON schema and refuse any that fail (and `$ref`s to a
   * missing `$evaluator`). Default true. With false, schema problems are warned about and a flag
   * with a broken rule answers a per-flag `PARSE_ERROR`, as flagd does; broken JSON or structure
   * is refused either way.
   */
  strictValidation?: boolean
  /** A new flags document may drop at most this share (percent) of the flags being served; zero flags are always refused. Default 50. */
  maxShrinkPercent?: number
  /** Caps on evaluation requests (body bytes, attributes, depth, string lengths); see `RequestLimits` for each default. */
  limits?: Partial<RequestLimits>
  /** Past this event-loop delay (ms), flag and event requests get 503 + `Retry-After: 1` instead of queueing. Default 500; 0 turns shedding off. */
  maxEventLoopDelayMs?: number
  /** Bytes of bulk answers kept for repeated contexts (least recently used first out). Default 32 MiB; 0 turns the cache off. */
  answerCacheBytes?: number
  /** Where reloads, refused edits and failures are reported (prefixed `[holdfast-server]`). Default: the console. */
  logger?: ServerLogger
  /** Metrics to add to (share one registry with your app). Default: a fresh registry per handler. */
  metrics?: ServerMetrics
  /** Extra routes by exact path (e.g. the relay's `/holdfast/v1/status`). They need the API key unless `auth: false`. Default: none. */
  routes?: Record<string, Route>
  /**
   * The OFREP event stream (live updates): bulk answers advertise `GET /holdfast/v1/stream`, which
   * sends a `refetchEvaluation` notice when the definitions change. Default on, with the defaults
   * of `StreamHubOptions`; `false` turns it off (no advertisement, the route answers 404).
   */
  liveUpdates?: false | StreamHubOptions
  /** Extra middleware, run before every matched route's handler (after CORS, the API key, the method check and load shedding). Default: none. */
  middleware?: Middleware[]
}

/** Options of `createFlagServer` (flagServer.ts): the handler's options plus where and how to listen. */
export interface FlagServerOptions extends FlagHandlerOptions {
  /** TCP port. Default 8787; 0 picks a free one (read it back from `port` or `url`). */
  port?: number
  /** Interface to bind. Default `127.0.0.1`, so nothing outside this machine can reach it. */
  host?: string
  /** Most connections open at once; more are refused by the kernel queue. Default 1,024. Event streams may hold at most half of them. */
  maxConnections?: number
  /** Time a client has to send all request headers (slowloris). Default 10,000 ms. */
  headersTimeoutMs?: number
  /** Time a client has to send a whole request, body included. Default 30,000 ms. */
  requestTimeoutMs?: number
  /** How long an idle keep-alive connection is kept. Default 5,000 ms. */
  keepAliveTimeoutMs?: number
  /** On `close()`, how long in-flight requests may take to finish before their connections are cut. Default 10,000 ms. */
  drainTimeoutMs?: number
}
