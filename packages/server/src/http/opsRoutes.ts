import type { IncomingMessage, ServerResponse } from 'node:http'
import type { StoreStall } from '../events/storeStall'
import type { FlagSource } from '../flags/flagSource'
import { servedSourceOf } from '../flags/relay'
import type { ServerMetrics } from '../metrics'
import { sendJson, sendText } from './body'
import type { Route } from './requestHandler'

/**
 * The operations routes, none of which needs the API key: `/` (a short page listing the
 * endpoints), `/healthz` (liveness: the process answers), `/readyz` (readiness: definitions are
 * being served and the server is not draining; an events store that hangs is named, not a 503)
 * and `/metrics` (Prometheus text format).
 */
export function createOpsRoutes(deps: {
  flags: FlagSource
  metrics: ServerMetrics
  isDraining(): boolean
  /**
   * The events store's write that has not returned (`events.stalled` of the status), named in the
   * `/readyz` body without turning it 503: see `readyz` below.
   */
  eventsStalled?(): StoreStall | undefined
  /** Lines for the index page: `[method + path, what]`, in order. */
  endpoints(): Array<[string, string]>
}): Record<string, Route> {
  const healthz = (_req: IncomingMessage, res: ServerResponse) => sendJson(res, 200, { status: 'ok' })
  const readyz = (_req: IncomingMessage, res: ServerResponse) => {
    const ready = !deps.isDraining() && (deps.flags.current() !== undefined || deps.flags.status().ready)
    const version = deps.flags.current()
    // An events store that hangs (a dead mount) is said here but does not make the server not
    // ready: its events requests get 503 + Retry-After and their clients keep the events (nothing
    // is lost), while its flags are still served. Taken out of a load balancer for it, the
    // instance would stop serving flags as well, and a fleet whose spools share one dead mount
    // would stop serving flags altogether. Before, `/readyz` said nothing of it.
    const stalled = deps.eventsStalled?.()
    sendJson(res, ready ? 200 : 503, {
      status: ready ? 'ready' : deps.isDraining() ? 'draining' : 'not-ready',
      // The source by the names the answers' metadata.holdfast and the status use (CONTRACT §9), not
      // the origin's own ('url', 'inline'), which an operator would find nowhere else.
      ...(version ? { version: version.version, source: servedSourceOf(version.origin), flags: version.flagCount } : {}),
      ...(stalled ? { events: { stalled } } : {}),
    })
  }
  const metrics = async (_req: IncomingMessage, res: ServerResponse) => {
    sendText(res, 200, await deps.metrics.registry.metrics(), deps.metrics.registry.contentType)
  }
  const index = (req: IncomingMessage, res: ServerResponse) => {
    const rows = deps.endpoints()
    const accept = String(req.headers.accept ?? '')
    if (!accept.includes('text/html')) {
      const width = Math.max(...rows.map(([route]) => route.length))
      const text = `holdfast-server: an OFREP flag server (https://openfeature.dev/specification/appendix-c)\n\n${rows.map(([route, what]) => `${route.padEnd(width)}  ${what}`).join('\n')}\n`
      return sendText(res, 200, text, 'text/plain; charset=utf-8')
    }
    const items = rows.map(([route, what]) => `<tr><td><code>${escape(route)}</code></td><td>${escape(what)}</td></tr>`).join('\n')
    const html = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>holdfast-server</title></head>\n<body><h1>holdfast-server</h1><p>An OFREP flag server. Endpoints:</p>\n<table>\n${items}\n</table></body></html>\n`
    sendText(res, 200, html, 'text/html; charset=utf-8')
  }
  return {
    '/': { name: 'index', auth: false, methods: { GET: index, HEAD: index } },
    '/healthz': { name: 'healthz', auth: false, methods: { GET: healthz, HEAD: healthz } },
    '/readyz': { name: 'readyz', auth: false, methods: { GET: readyz, HEAD: readyz } },
    '/metrics': { name: 'metrics', auth: false, methods: { GET: metrics, HEAD: metrics } },
  }
}

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
}
