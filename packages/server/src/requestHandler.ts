import type { IncomingMessage, ServerResponse } from 'node:http'
import { hasApiKey } from './auth'
import { corsHeaders, preflightHeaders } from './cors'
import { handleGetOutage, handleResetEvents, handleSetOutage } from './demoRoutes'
import { handleEvents } from './events/routes'
import type { EventSink } from './events/sink'
import type { FlagSource } from './flagSource'
import { isGone, sendEmpty, sendJson } from './http'
import type { ServerLogger } from './logger'
import { handleBulkEvaluation, handleFlagEvaluation } from './ofrepRoutes'
import type { OutageControl } from './outage'

/** Everything the routes need; built by `createFlagServer`. */
export interface HandlerDeps {
  flags: FlagSource
  sink: EventSink
  /** Present only with demo controls on; without it the `/demo/*` routes are 404. */
  outage?: OutageControl
  apiKey?: string
  corsOrigin?: string
  log: ServerLogger
  isClosing(): boolean
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void

interface Route {
  /** Allowed methods, each mapped to its handler. */
  methods: Record<string, Handler>
  /** Whether the API key (when configured) is required. */
  auth: boolean
}

const BULK_PATH = '/ofrep/v1/evaluate/flags'

/**
 * Creates the `node:http` request listener. Order of checks: CORS headers on everything (errors
 * included, or the browser hides the status from script), preflight before auth (browsers send
 * no credentials on OPTIONS), then route, method and API key.
 */
export function createRequestHandler(deps: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = createRoutes(deps)
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(corsHeaders(deps.corsOrigin))) res.setHeader(name, value)
    if (req.method === 'OPTIONS') return sendEmpty(res, 204, preflightHeaders(req, deps.corsOrigin))
    const path = pathOf(req.url)
    const route = routes(path)
    if (!route) return sendJson(res, 404, { errorDetails: `nothing at ${req.url}` })
    const run = route.methods[req.method ?? 'GET']
    if (!run) return sendJson(res, 405, { errorDetails: `${req.method} is not allowed here` }, { Allow: [...Object.keys(route.methods), 'OPTIONS'].join(', ') })
    if (route.auth && !hasApiKey(req, deps.apiKey)) {
      return sendJson(res, 401, { errorCode: 'UNAUTHORIZED', errorDetails: 'a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)' }, { 'WWW-Authenticate': 'Bearer' })
    }
    await run(req, res)
  }
  return (req, res) => {
    handle(req, res).catch((error: unknown) => {
      deps.log.error(`${req.method} ${req.url} failed: ${(error as Error)?.stack ?? String(error)}`)
      if (!isGone(res) && !res.headersSent) sendJson(res, 500, { errorDetails: 'internal server error' })
      else res.destroy()
    })
  }
}

function createRoutes(deps: HandlerDeps): (path: string) => Route | undefined {
  const { outage, sink } = deps
  const table: Record<string, Route> = {
    '/healthz': { auth: false, methods: { GET: healthz, HEAD: healthz } },
    [BULK_PATH]: { auth: true, methods: { POST: (req, res) => handleBulkEvaluation(req, res, deps) } },
    '/holdfast/v1/events': { auth: true, methods: { POST: (req, res) => handleEvents(req, res, deps) } },
  }
  if (outage) {
    table['/demo/outage'] = { auth: true, methods: { GET: (_req, res) => handleGetOutage(res, outage), POST: (req, res) => handleSetOutage(req, res, outage) } }
    table['/demo/reset-events'] = { auth: true, methods: { POST: (_req, res) => handleResetEvents(res, sink) } }
  }
  return (path) => {
    // Own-property lookup: a path like /constructor must not find Object.prototype's members.
    if (Object.prototype.hasOwnProperty.call(table, path)) return table[path]
    if (!path.startsWith(`${BULK_PATH}/`)) return undefined
    const key = decodeKey(path.slice(BULK_PATH.length + 1))
    if (key === undefined || key === '') return undefined
    return { auth: true, methods: { POST: (req, res) => handleFlagEvaluation(req, res, key, deps) } }
  }
}

// The server is ready once it listens: the flags were loaded before `listen()`.
function healthz(_req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' })
}

/** The path of a request target without query or trailing slash. */
function pathOf(target: string | undefined): string {
  const pathname = (target ?? '/').split(/[?#]/)[0] || '/'
  return pathname.length > 1 ? pathname.replace(/\/+$/, '') || '/' : pathname
}

function decodeKey(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}
