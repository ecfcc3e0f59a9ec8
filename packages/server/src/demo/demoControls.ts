import type { ServerResponse } from 'node:http'
import type { EventSink } from '../events/eventSink'
import { isGone, sendJson, sendText } from '../http/body'
import type { Middleware, Route } from '../http/requestHandler'
import { handleGetOutage, handleResetEvents, handleSetOutage } from './demoRoutes'
import { createOutageControl, type OutageControl } from './outage'

/** Route names the simulated outage applies to: the OFREP routes (`mode`) and the events route (`events`). */
const FLAG_ROUTES = new Set(['ofrep.bulk', 'ofrep.flag'])

/** The demo outage controls: their routes, the middleware that plays the outage, and the state. */
export interface DemoControls {
  /** `GET/POST /demo/outage` and `POST /demo/reset-events`. */
  routes: Record<string, Route>
  /** Plays the simulated outage in front of the production routes; they know nothing of it. */
  middleware: Middleware
  outage: OutageControl
}

/**
 * Creates the demo outage controls (`--demo-controls`). Absent unless asked for: without them the
 * server has no `/demo/*` routes and no outage middleware at all, so the production routes carry
 * no demo branches.
 */
export function createDemoControls(options: { sink: EventSink; isClosing(): boolean }): DemoControls {
  const outage = createOutageControl()
  const routes: Record<string, Route> = {
    '/demo/outage': { name: 'demo.outage', methods: { GET: (_req, res) => handleGetOutage(res, outage), POST: (req, res) => handleSetOutage(req, res, outage) } },
    '/demo/reset-events': { name: 'demo.reset-events', methods: { POST: (_req, res) => handleResetEvents(res, options.sink) } },
  }
  const middleware: Middleware = async (_req, res, route, next) => {
    if (route.name === 'events' && outage.get().events) return simulated503(res, outage)
    if (FLAG_ROUTES.has(route.name) && (await answeredByOutage(res, outage, options.isClosing))) return
    return next()
  }
  return { routes, middleware, outage }
}

const CAPTIVE_PORTAL = `<!doctype html>
<html><head><title>Sign in to CoffeeShop Wi-Fi</title></head>
<body><h1>Welcome to CoffeeShop Wi-Fi</h1><p>Accept the terms to continue browsing.</p>
<form method="post"><button>Accept and connect</button></form></body></html>
`

function simulated503(res: ServerResponse, outage: OutageControl): void {
  const { retryAfter } = outage.get()
  sendJson(res, 503, { errorDetails: 'simulated outage (demo controls)' }, retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) })
}

/**
 * Plays the simulated outage, if any. Returns true when the request has been dealt with (answered,
 * or abandoned because the client or the server went away). `hang` holds the request until the
 * mode changes, then plays whatever the new mode is (`none` answers normally).
 */
async function answeredByOutage(res: ServerResponse, outage: OutageControl, isClosing: () => boolean): Promise<boolean> {
  let state = outage.get()
  while (state.mode === 'hang') {
    await outage.changed()
    if (isClosing() || isGone(res)) {
      // Shutting down: drop the held request (the client sees the connection close, as in a real hang).
      res.destroy()
      return true
    }
    state = outage.get()
  }
  switch (state.mode) {
    case 'none':
      return false
    case '503':
      simulated503(res, outage)
      return true
    case 'empty':
      sendJson(res, 200, {})
      return true
    case 'empty-flags':
      sendJson(res, 200, { flags: [] })
      return true
    case 'html':
      sendText(res, 200, CAPTIVE_PORTAL, 'text/html; charset=utf-8')
      return true
  }
}


