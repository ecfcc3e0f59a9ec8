import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { clipped, type ServerLogger } from '../logger'
import type { ServerMetrics } from '../metrics'
import { hasApiKey } from './auth'
import { isGone, MAX_BODY_BYTES, sendEmpty, sendJson } from './body'
import { corsHeaders, preflightHeaders } from './cors'
import { deferCors } from './corsResponse'
import type { LoadShedder } from './loadShedder'

/** A route's handler for one method. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void

/** One path of the server: its handlers by method, whether it needs the API key, whether it may be shed under load. */
export interface Route {
  /** A short stable name, used as the `route` label in metrics and by middleware (`ofrep.bulk`, `events`, ...). */
  name: string
  /** Handlers by HTTP method (upper case). Others get 405 with an `Allow` header. */
  methods: Record<string, RouteHandler>
  /** Whether the API key (when one is configured) is required. Default true. */
  auth?: boolean
  /** Whether the route is refused with 503 while the event loop is overloaded. Default false. */
  shed?: boolean
  /**
   * Checks that need the head only (e.g. the `Content-Type`): answers the request itself and
   * returns true to refuse it, before a `100 Continue` is sent and before the handler runs.
   */
  refuse?: (req: IncomingMessage, res: ServerResponse) => boolean
}

/**
 * Runs before a matched route's handler, after CORS, the API key and the method were checked.
 * Call `next()` to go on, or answer `res` and return without calling it. The demo outage controls
 * are one (`demoControls: true`); an app can add its own (logging, tracing).
 */
export type Middleware = (req: IncomingMessage, res: ServerResponse, route: Route, next: () => Promise<void>) => Promise<void> | void

/**
 * A request listener for `node:http` (and anything that hands over Node's `req`/`res`: Express,
 * Fastify's raw objects, Next.js pages API routes). With `next` (Express style), a path the server
 * does not know is passed on instead of answered 404.
 */
export type RequestListener = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void

/** What {@link createRequestListener} wires together. */
export interface RequestListenerParts {
  /** Routes by exact path. */
  routes: Record<string, Route>
  /** Routes whose path has parameters (e.g. `/ofrep/v1/evaluate/flags/{key}`); consulted after `routes`. */
  resolve?: (path: string) => Route | undefined
  /** Run in order before the route's handler. */
  middleware?: Middleware[]
  /** Required on routes with `auth` when set. Never empty (checked by the caller). */
  apiKey?: string
  /** CORS origin; default any (`*`). */
  corsOrigin?: string
  log: ServerLogger
  metrics?: ServerMetrics
  shedder?: LoadShedder
  /** True while draining: new requests get 503 `Connection: close`. */
  isDraining?: () => boolean
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

const CONTINUE_HELD = '_holdfastContinue'

/**
 * Marks a request whose `Expect: 100-continue` Node has not answered (a server's `checkContinue`
 * listener, as `createFlagServer` has): the listener sends the `100 Continue` only once the
 * request passed the checks that need no body (the key, the path, the method, load shedding). By
 * default Node sends it before any listener runs, and a client that asked first is told to send a
 * body the server then refuses unread, on a connection it closes under that body.
 */
export function holdContinue(res: ServerResponse): void {
  ;(res as unknown as Record<string, unknown>)[CONTINUE_HELD] = true
}

/**
 * Creates the request listener. Order of checks, each for a reason:
 * 0. Mounted in an app with `next`, a path that is not ours goes straight to `next()`: the app's
 *    answer carries none of our headers and is not counted as ours.
 * 1. CORS headers on everything (errors included, or the browser hides the status from script);
 *    under `createFlagServer` they are added as the head is written (see `CorsResponse`).
 * 2. `OPTIONS` on a known path answers the preflight without the key (browsers never send
 *    credentials on a preflight); on an unknown path it is a 404 like any other method.
 * 3. The API key, before 404/405: without the key a caller learns nothing, not even which paths exist.
 * 4. 404 for unknown paths, 405 for wrong methods.
 * 5. Load shedding (503 + `Retry-After`) for routes that do real work, then middleware, then the route.
 */
export function createRequestListener(parts: RequestListenerParts): RequestListener {
  const { routes, apiKey, corsOrigin, log, metrics, shedder } = parts
  const middleware = parts.middleware ?? []
  const lookup = (path: string): Route | undefined =>
    // Own-property lookup: a path like /constructor must not find Object.prototype's members.
    Object.prototype.hasOwnProperty.call(routes, path) ? routes[path] : parts.resolve?.(path)

  const cors = Object.entries(corsHeaders(corsOrigin))
  // Not async: a route that answers synchronously (or with one promise of its own, as a cached
  // bulk answer does) pays for no extra promise here.
  const handle = (req: IncomingMessage, res: ServerResponse, route: Route | undefined): Promise<void> | void => {
    if (!deferCors(res, cors)) for (const [name, value] of cors) res.setHeader(name, value)
    if (parts.isDraining?.()) {
      return sendJson(res, 503, { errorDetails: 'the server is shutting down' }, { 'Retry-After': '1', Connection: 'close' })
    }
    if (req.method === 'OPTIONS' && route) return sendEmpty(res, 204, preflightHeaders(req, corsOrigin))
    if ((route?.auth ?? true) && !hasApiKey(req, apiKey)) {
      return sendJson(res, 401, { errorCode: 'UNAUTHORIZED', errorDetails: 'a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)' }, { 'WWW-Authenticate': 'Bearer' })
    }
    if (!route) return sendJson(res, 404, { errorDetails: 'nothing here; GET / lists the endpoints' })
    const method = req.method ?? 'GET'
    // Own properties only: a method is any token, and one a host passes through from a Web Request
    // (`constructor`, `toString`, `__proto__`) found Object.prototype's members, which never
    // answered or threw.
    const run = Object.prototype.hasOwnProperty.call(route.methods, method) ? route.methods[method] : undefined
    if (!run) {
      const allow = [...Object.keys(route.methods), 'OPTIONS'].join(', ')
      return sendJson(res, 405, { errorDetails: `${req.method} is not allowed here (${allow})` }, { Allow: allow })
    }
    if (route.shed && shedder?.overloaded()) {
      metrics?.loadShed.inc()
      return sendJson(res, 503, { errorDetails: 'the server is overloaded; retry shortly' }, { 'Retry-After': '1' })
    }
    // A body that will be refused for its type is refused before a client is told to send it.
    if (route.refuse?.(req, res)) return
    // Every check that needs no body passed: a client waiting for leave to send it gets it now,
    // unless what it declared is over every route's cap (the route answers 413 unread).
    if (req.headers.expect !== undefined && (res as unknown as Record<string, unknown>)[CONTINUE_HELD] === true && !(Number(req.headers['content-length']) > MAX_BODY_BYTES)) {
      res.writeContinue()
    }
    if (middleware.length === 0) return run(req, res)
    let index = 0
    const step = async (): Promise<void> => {
      const layer = middleware[index++]
      if (layer) return layer(req, res, route, step)
      return run(req, res)
    }
    return step()
  }
  const fail = (req: IncomingMessage, res: ServerResponse, route: Route | undefined, started: number, error: unknown) => {
    log.error(`${clipped(req.method ?? '', 20)} ${clipped(req.url ?? '')} failed: ${(error as Error)?.stack ?? String(error)}`)
    if (!isGone(res) && !res.headersSent) sendJson(res, 500, { errorDetails: 'internal server error' })
    else res.destroy()
    if (metrics) record(metrics, req, res, route, started)
  }
  return (req, res, next) => {
    const route = lookup(pathOf(req.url))
    // Mounted in an app (Express style): a path that is not ours is the app's, untouched: no CORS
    // headers of ours, no draining 503, not counted in our metrics.
    if (!route && next) return next()
    const started = metrics ? performance.now() : 0
    let pending: Promise<void> | void
    try {
      pending = handle(req, res, route)
    } catch (error) {
      return fail(req, res, route, started, error)
    }
    // A handler of an app's own may return anything; only a thenable is waited for.
    if (typeof (pending as Promise<void> | undefined)?.then === 'function') {
      ;(pending as Promise<void>).then(
        metrics && (() => record(metrics, req, res, route, started)),
        (error: unknown) => fail(req, res, route, started, error),
      )
    } else if (metrics) record(metrics, req, res, route, started)
  }
}

// Counted once the answer is complete. Most handlers have ended the response by the time their
// promise settles (a cached answer is written in one call), so it is counted there and then,
// without a 'finish' listener per request; an answer not yet ended (a stream, a handler that
// answers later) is counted on 'finish', and one never finished (the client left) is not counted.
function record(metrics: ServerMetrics, req: IncomingMessage, res: ServerResponse, route: Route | undefined, started: number): void {
  if (res.writableEnded) count(metrics, req, res, route, started)
  else res.once('finish', () => count(metrics, req, res, route, started))
}

function count(metrics: ServerMetrics, req: IncomingMessage, res: ServerResponse, route: Route | undefined, started: number): void {
  metrics.countRequest(route?.name ?? 'unknown', methodLabel(req.method), res.statusCode, (performance.now() - started) / 1000)
}

// A bounded label set: anything else a client sends is `other`.
function methodLabel(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : 'other'
}

/** The path of a request target (origin or absolute form) without query or trailing slash. */
export function pathOf(target: string | undefined): string {
  let raw = target ?? '/'
  // The absolute form (`http://host/path?query`), which a server must accept (RFC 9112 §3.2.2)
  // though clients send it only to proxies: its path. Anchored, one character class: linear.
  if (raw.charCodeAt(0) !== 47) {
    const authority = /^https?:\/\/[^/?#]*/i.exec(raw)
    if (authority) raw = raw.slice(authority[0].length)
  }
  let cut = raw.length
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c === 63 || c === 35) {
      cut = i
      break
    }
  }
  const pathname = raw.slice(0, cut) || '/'
  if (pathname.length <= 1) return pathname
  let end = pathname.length
  // A loop, not /\/+$/: that regex is quadratic on a path of many slashes.
  while (end > 1 && pathname.charCodeAt(end - 1) === 47) end--
  return pathname.slice(0, end)
}
