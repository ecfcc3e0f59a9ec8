// What an operator sees: liveness vs readiness, metrics, the index page, a graceful drain, and the
// handler mounted inside an app's own server.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createFlagHandler, toFetchHandler, type FlagHandler, type Middleware } from '@holdfast/server'
import { DEMO_FLAGS, evaluate, post, rawConnection, recordingLogger, startServer, waitFor } from './helpers'

const BULK = '/ofrep/v1/evaluate/flags'


/** A server whose bulk route never answers; `stuckRequest()` sends one bulk request and resolves once the server holds it. */
async function neverAnswering(drainTimeoutMs: number) {
  let held!: () => void
  const arrived = new Promise<void>((resolve) => (held = resolve))
  const never: Middleware = (_req, _res, route, next) => {
    if (route.name !== 'ofrep.bulk') return next()
    held()
    return new Promise<void>(() => {})
  }
  const server = await startServer({ middleware: [never], drainTimeoutMs })
  const stuckRequest = async () => {
    const stuck = await rawConnection(server.url)
    const body = JSON.stringify({ context: { targetingKey: 'u' } })
    stuck.socket.write(`POST ${BULK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    await arrived
    return stuck
  }
  return { server, stuckRequest }
}

describe('GET /', () => {
  it('lists the endpoints as text, or as a small HTML page for a browser, without the API key', async () => {
    const server = await startServer({ apiKey: 'k', demoControls: true })
    const text = await fetch(`${server.url}/`)
    expect(text.status).toBe(200)
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/)
    const body = await text.text()
    for (const endpoint of ['POST /ofrep/v1/evaluate/flags', 'POST /holdfast/v1/events', 'GET /healthz', 'GET /readyz', 'GET /metrics', '/demo/outage']) {
      expect(body).toContain(endpoint)
    }
    const html = await fetch(`${server.url}/`, { headers: { Accept: 'text/html,*/*' } })
    expect(html.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await html.text()).toMatch(/<title>holdfast-server<\/title>[\s\S]*<code>GET \/readyz<\/code>/)
  })
})

describe('health', () => {
  it('/healthz is liveness, /readyz readiness: both 200 while serving, readyz names the version', async () => {
    const server = await startServer({ apiKey: 'k' })
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: 'ready', version: expect.stringMatching(/^[\w-]{16}$/), source: 'file', flags: 7 })
  })

  it('/readyz turns 503 while draining, /healthz stays 200', async () => {
    const handler = await mount({ flags: DEMO_FLAGS })
    handler.handler.drain()
    expect((await fetch(`${handler.url}/readyz`)).status).toBe(503)
    // Draining refuses new work on open connections, with Connection: close.
    const refused = await evaluate({ url: handler.url } as never, { targetingKey: 'u' })
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
  })
})

describe('GET /metrics', () => {
  it('counts requests and latencies by route, evaluation errors, cache hits, and describes the definitions', async () => {
    const flags = {
      metadata: { flagSetId: 'm' },
      flags: {
        ...DEMO_FLAGS.flags,
        broken: { state: 'ENABLED', variants: { a: 1 }, defaultVariant: 'a', targeting: { if: [{ nope: [1] }, 'a', null] } },
      },
    } as never
    const server = await startServer({ flags, strictValidation: false, logger: recordingLogger() })
    for (let i = 0; i < 3; i++) expect((await evaluate(server, { targetingKey: 'same' })).status).toBe(200)
    await evaluate(server, { targetingKey: '' })
    const response = await fetch(`${server.url}/metrics`)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    let text = await response.text()
    // The event-loop histogram samples every 10 ms: on an idle machine the requests above finish
    // before its first sample, so scrape until it has one (once set, the gauge keeps its value).
    await waitFor(async () => {
      if (/^holdfast_event_loop_delay_seconds\{quantile="0\.99"\} /m.test(text)) return true
      text = await (await fetch(`${server.url}/metrics`)).text()
      return false
    }, 5_000)
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="200"\} 3$/m)
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="400"\} 1$/m)
    expect(text).toMatch(/^holdfast_http_request_duration_seconds_count\{route="ofrep\.bulk"\} 4$/m)
    expect(text).toMatch(/^holdfast_evaluation_errors_total\{code="PARSE_ERROR"\} 3$/m)
    expect(text).toMatch(/^holdfast_answer_cache_total\{result="hit"\} 2$/m)
    expect(text).toMatch(/^holdfast_flag_definitions_info\{version="[\w-]{16}",origin="file"\} 1$/m)
    expect(text).toMatch(/^holdfast_flag_definitions_flags 8$/m)
    expect(text).toMatch(/^holdfast_flag_definitions_age_seconds \d/m)
    expect(text).toMatch(/^# TYPE holdfast_flag_reload_failures_total counter$/m)
    expect(text).toMatch(/^holdfast_event_loop_delay_seconds\{quantile="0\.99"\} /m)
  })

  it('answers HEAD like GET, without the body (monitors that probe with HEAD got 405 before)', async () => {
    const server = await startServer()
    const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(await head.text()).toBe('')
  })
})

describe('graceful drain', () => {
  it('close() lets a request in flight finish, refuses new connections, then resolves', async () => {
    let inFlight!: () => void
    const arrived = new Promise<void>((resolve) => (inFlight = resolve))
    const spy: Middleware = (_req, _res, route, next) => {
      if (route.name === 'ofrep.bulk') inFlight()
      return next()
    }
    const server = await startServer({ middleware: [spy] })
    const { socket, received, closed: disconnected } = await rawConnection(server.url)
    const body = JSON.stringify({ context: { targetingKey: 'u' } })
    // Headers and half the body: the request is in flight, waiting for the rest.
    socket.write(`POST ${BULK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`)
    await arrived
    let closed = false
    const closing = server.close().then(() => (closed = true))
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow()
    expect(closed).toBe(false)
    socket.write(body.slice(10))
    await closing
    await disconnected
    expect(received()).toMatch(/^HTTP\/1\.1 200 /)
    expect(received()).toContain('"kill-switch"')
  })

  it('close() closes idle keep-alive connections at once, and cuts a request that outlives drainTimeoutMs', async () => {
    const { server, stuckRequest } = await neverAnswering(400)
    // One connection idle after an answer, one with a request that is never answered.
    const idle = await rawConnection(server.url)
    idle.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor(() => /^HTTP\/1\.1 200 /.test(idle.received()), 2000)
    const stuck = await stuckRequest()
    const started = Date.now()
    const closing = server.close()
    await idle.closed
    const idleClosedAfter = Date.now() - started
    await stuck.closed
    await closing
    const elapsed = Date.now() - started
    expect(idleClosedAfter).toBeLessThan(300)
    expect(elapsed).toBeGreaterThanOrEqual(380)
    expect(elapsed).toBeLessThan(2000)
    expect(stuck.received()).toBe('')
  })

  it('the wall clock set back an hour during the drain does not hold close() an hour', async () => {
    const { server, stuckRequest } = await neverAnswering(300)
    const stuck = await stuckRequest()
    const real = Date.now
    const started = performance.now()
    const closing = server.close()
    const back = real() - 3_600_000
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => back)
    try {
      await closing
    } finally {
      clock.mockRestore()
    }
    expect(performance.now() - started).toBeLessThan(2000)
  })
})

describe('createFlagHandler', () => {
  it('mounts in an existing node:http server and passes unknown paths to next()', async () => {
    const mounted = await mount({ flags: DEMO_FLAGS, apiKey: 'k' })
    const flags = await evaluate({ url: mounted.url } as never, { targetingKey: 'u' }, { 'X-API-Key': 'k' })
    expect(flags.status).toBe(200)
    const app = await fetch(`${mounted.url}/shop`)
    expect(await app.text()).toBe('the app answered /shop')
    // The app's own answers are the app's: no CORS headers of ours, not counted in our metrics.
    expect(app.headers.get('access-control-allow-origin')).toBeNull()
    expect(await mounted.handler.metrics.registry.getSingleMetricAsString('holdfast_http_requests_total')).not.toMatch(/route="unknown"/)
    // Its own paths still need the key.
    expect((await post(`${mounted.url}${BULK}`, { context: { targetingKey: 'u' } })).status).toBe(401)
  })

  it('refuses options that cannot work, with one message naming each', async () => {
    await expect(createFlagHandler({} as never)).rejects.toThrow(/flags: flags is required/)
    await expect(createFlagHandler({ flags: DEMO_FLAGS, maxShrinkPercent: 150 })).rejects.toThrow(/maxShrinkPercent/)
    await expect(createFlagHandler({ flags: DEMO_FLAGS, limits: { maxBodyBytes: 2_000_000 } })).rejects.toThrow(/limits\.maxBodyBytes/)
    await expect(startServer({ port: 70_000 })).rejects.toThrow(/port/)
  })
})

const mounted: Array<{ server: Server; handler: FlagHandler }> = []
afterEach(async () => {
  for (const { server, handler } of mounted.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await handler.close()
  }
})

// An app's own server with the Holdfast handler mounted Express-style: unknown paths fall through.
async function mount(options: Parameters<typeof createFlagHandler>[0]): Promise<{ url: string; handler: FlagHandler }> {
  const handler = await createFlagHandler({ logger: recordingLogger(), maxEventLoopDelayMs: 0, ...options })
  const server = createServer((req, res) => handler(req, res, () => res.end(`the app answered ${req.url}`)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  mounted.push({ server, handler })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, handler }
}



describe('toFetchHandler', () => {
  it('answers Web Requests (a Next.js App Router route handler) under a base path, 304s and caps included', async () => {
    const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger: recordingLogger(), maxEventLoopDelayMs: 0 })
    try {
      const handle = toFetchHandler(handler, { basePath: '/api/flags' })
      const request = (init: RequestInit & { path?: string } = {}) =>
        handle(new Request(`http://app.example${init.path ?? '/api/flags/ofrep/v1/evaluate/flags'}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(init.headers as object) }, body: init.body ?? JSON.stringify({ context: { targetingKey: 'u', plan: 'pro' } }) }))
      const ok = await request()
      expect(ok.status).toBe(200)
      expect(ok.headers.get('access-control-allow-origin')).toBe('*')
      const body = (await ok.json()) as { flags: Array<{ key: string; value?: unknown }> }
      expect(body.flags.find((f) => f.key === 'beta')?.value).toBe(true)
      const etag = ok.headers.get('etag')!
      const notModified = await request({ headers: { 'If-None-Match': etag } })
      expect(notModified.status).toBe(304)
      expect(notModified.headers.get('etag')).toBe(etag)
      expect((await request({ body: '{"context":{}}' })).status).toBe(400)
      expect((await request({ body: 'x'.repeat(2 * 1_048_576) })).status).toBe(413)
      const health = await handle(new Request('http://app.example/api/flags/healthz'))
      expect(await health.json()).toEqual({ status: 'ok' })
      expect((await handle(new Request('http://app.example/api/flags/nope'))).status).toBe(404)
    } finally {
      await handler.close()
    }
  })
})
