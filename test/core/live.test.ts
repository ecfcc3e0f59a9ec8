// Live updates in Node (a program that opts in with `liveUpdates`), against real servers on
// 127.0.0.1: the reference server with a watched flags file, and a hand-made OFREP server whose
// stream the test controls (notices, unknown types, a stream that hangs).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type ClientOptions, type Environment, type EnvironmentHandlers, type FlagClient } from '@holdfast/core'
import { createFlagServer, createListeners, parseFlagDefinitions, type FlagdDefinitions, type FlagDefinitionsVersion, type FlagSource, type FlagSourceEvent, type Middleware } from '@holdfast/server'
import { liveClient, pollUntil as waitFor, startStreamingOfrep } from '../support/streamingOfrep'
import { createManualClock, createTestLogger } from '../support/clock'

// Streams reconnect after a 2–4 s backoff and servers restart within a test: real seconds on a
// loaded machine (a full run in CI), past the 5 s default; each test's own bounds still hold.
vi.setConfig({ testTimeout: 30_000 })

const cleanup: Array<() => Promise<unknown> | unknown> = []
const client = (url: string, options: Partial<ClientOptions> = {}): FlagClient => liveClient(url, 'live', cleanup, options)
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

function definitions(on: boolean): FlagdDefinitions {
  return { flags: { 'kill-switch': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: on ? 'on' : 'off' } } }
}

/** Counts requests per route at the server. */
function counter() {
  const counts: Record<string, number> = {}
  const middleware: Middleware = (_req, _res, route, next) => {
    counts[route.name] = (counts[route.name] ?? 0) + 1
    return next()
  }
  return { counts, middleware, get: (name: string) => counts[name] ?? 0 }
}

async function flagFileServer(options: { port?: number; file?: string; retryMs?: number; live?: false } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-live-'))
  const file = options.file ?? join(dir, 'flags.json')
  if (!options.file) await writeFile(file, JSON.stringify(definitions(false)))
  const count = counter()
  const server = await createFlagServer({
    flags: file,
    port: options.port ?? 0,
    logger: { info() {}, warn() {}, error() {} },
    maxEventLoopDelayMs: 0,
    middleware: [count.middleware],
    liveUpdates: options.live ?? { retryMs: options.retryMs ?? 200 },
  })
  cleanup.push(() => server.close())
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  return { server, file, count }
}

describe('live updates against the reference server', () => {
  it('shows a flags-file edit within 2 s, with polling off, through one refetch per change', async () => {
    const { server, file, count } = await flagFileServer()
    const c = client(server.url)
    await c.start()
    expect(c.getGate('kill-switch')).toBe(false)
    await waitFor(() => server.handler.stream!.connections() === 1, 5000, 'the stream')
    const bulkBefore = count.get('ofrep.bulk')

    await writeFile(file, JSON.stringify(definitions(true)))
    const took = await waitFor(() => c.getGate('kill-switch') === true, 5000, 'the change')
    expect(took).toBeLessThan(2000)
    expect(count.get('ofrep.bulk') - bulkBefore).toBe(1)
    expect(c.getDetails('kill-switch', false).source).toBe('network')
  })

  it('through a relay (--upstream): an upstream change reaches the client within 2 s', async () => {
    const upstream = await createFlagServer({ flags: definitions(false), port: 0, logger: { info() {}, warn() {}, error() {} }, maxEventLoopDelayMs: 0, liveUpdates: false })
    cleanup.push(() => upstream.close())
    const relay = await createFlagServer({ upstream: upstream.url, pollIntervalSeconds: 0.3, port: 0, logger: { info() {}, warn() {}, error() {} }, maxEventLoopDelayMs: 0 })
    cleanup.push(() => relay.close())
    const c = client(relay.url)
    await c.start()
    expect(c.getGate('kill-switch')).toBe(false)
    await waitFor(() => relay.handler.stream!.connections() === 1, 5000, 'the stream')
    upstream.setFlags(definitions(true))
    const took = await waitFor(() => c.getGate('kill-switch') === true, 5000, 'the change')
    expect(took).toBeLessThan(2000)
  })

  it('opens no stream when liveUpdates is false; by default it listens, in Node too (CONTRACT §10: default true)', async () => {
    const { server, file } = await flagFileServer()
    const off = client(server.url, { liveUpdates: false })
    await off.start()
    await new Promise((r) => setTimeout(r, 300))
    expect(server.handler.stream!.connections()).toBe(0)

    const byDefault = client(server.url, { liveUpdates: undefined })
    await byDefault.start()
    await waitFor(() => server.handler.stream!.connections() === 1, 5000, 'the default client to open the stream')
    await writeFile(file, JSON.stringify(definitions(true)))
    await waitFor(() => byDefault.getGate('kill-switch') === true, 5000, 'the change by default')
    expect(off.getGate('kill-switch')).toBe(false)
    expect(server.handler.stream!.connections()).toBe(1)
  })

  it('closes its stream on close()', async () => {
    const { server } = await flagFileServer()
    const c = client(server.url)
    await c.start()
    await waitFor(() => server.handler.stream!.connections() === 1, 5000, 'the stream')
    await c.close()
    await waitFor(() => server.handler.stream!.connections() === 0, 5000, 'the stream to close')
  })

  it('reconnects after a server restart without a storm, and catches up with a change made meanwhile', async () => {
    const first = await flagFileServer()
    const port = first.server.port
    const clients = Array.from({ length: 5 }, () => client(first.server.url))
    await Promise.all(clients.map((c) => c.start()))
    await waitFor(() => first.server.handler.stream!.connections() === 5, 5000, 'five streams')

    await first.server.close()
    await writeFile(first.file, JSON.stringify(definitions(true)))
    const second = await flagFileServer({ port, file: first.file })
    await waitFor(() => second.server.handler.stream!.connections() === 5, 15_000, 'five streams again')
    await waitFor(() => clients.every((c) => c.getGate('kill-switch') === true), 5000, 'the catch-up')
    // Each client: one stream and one catch-up refetch (a few more if a reconnect raced the restart).
    expect(second.count.get('stream')).toBeLessThanOrEqual(10)
    expect(second.count.get('ofrep.bulk')).toBeLessThanOrEqual(10)
  })
})

describe("a notice's etag back at the server that sent it (flagConfigEtag: written by URLSearchParams, a space as +)", () => {
  // A host's own FlagSource names its versions (an upstream's ETag, quoted, weak, with a space).
  // The server's notice carries the version as `etag`; the client's refetch sends it back as
  // `flagConfigEtag`; the server must read the same name back (ofrepRoutes.ts `noticed`, and the
  // catch-up with it), or it takes the refetch for one naming a version not served yet: held the
  // catch-up wait (2 s), then 200 in full, its If-None-Match ignored.
  for (const version of ['"abc"', 'W/"x"', 'W/"a b+c"', 'v 2%20&x=y']) {
    it(`${version}: the refetch names the version served: 304 to its ETag, not held`, async () => {
      const listeners = createListeners<FlagSourceEvent>()
      const make = (name: string): FlagDefinitionsVersion => {
        const parsed = parseFlagDefinitions(JSON.stringify(definitions(false)))
        if (!parsed.ok) throw new Error(parsed.error)
        return { version: name, definitions: parsed.definitions, evaluator: parsed.core, flagCount: parsed.count, origin: 'url', fetchedAt: 1_000 }
      }
      let current = make('v1')
      const source: FlagSource = {
        origin: 'url',
        open: async () => {},
        current: () => current,
        subscribe: listeners.add,
        refresh: async () => true,
        status: () => ({ ready: true, state: 'ok', lastSuccessAt: 1_000, refused: 0 }),
        close: async () => {},
      }
      const answered: Array<{ url: string; status: number }> = []
      const record: Middleware = (req, res, route, next) => {
        if (route.name === 'ofrep.bulk') res.on('finish', () => answered.push({ url: req.url ?? '', status: res.statusCode }))
        return next()
      }
      const server = await createFlagServer({ source, port: 0, logger: { info() {}, warn() {}, error() {} }, maxEventLoopDelayMs: 0, middleware: [record], liveUpdates: { retryMs: 200 } })
      cleanup.push(() => server.close())
      const c = client(server.url)
      await c.start()
      await waitFor(() => server.handler.stream!.connections() === 1, 5000, 'the stream')
      await waitFor(() => answered.length === 1, 5000, 'the first answer')
      // The same definitions under the new name: the answer (and its ETag) is unchanged.
      const previous = current
      current = make(version)
      listeners.emit({ type: 'update', version: current, previous, changed: [] })
      await waitFor(() => answered.length === 2, 5000, 'the refetch')
      expect(new URL(answered[1].url, 'http://x').searchParams.get('flagConfigEtag')).toBe(version)
      // 200 in full (after the wait) is what a refetch naming another version gets.
      expect(answered[1].status).toBe(304)
      expect(c.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
    })
  }
})

describe('a server restarted with live updates off (its answers advertise no stream, the route answers 404)', () => {
  // OFREP: "If not present, the provider should continue using polling for change detection": the
  // app's polling (none here). Before, an open page went on dialling the old stream for ever (a 404
  // on a backoff up to a minute) and polling every fallbackPollMs meanwhile: the operator who turned
  // streams off to spare the server got more requests from every open tab, not fewer.
  it('the page stops dialling the stream and polling once an answer says there is none; an answer advertising one again reopens it', async () => {
    const first = await flagFileServer()
    const port = first.server.port
    const sent: string[] = []
    const c = client(first.server.url, { fetch: (input, init) => (sent.push(String(input)), fetch(input, init)), liveUpdates: { fallbackPollMs: 1000 } })
    await c.start()
    await waitFor(() => first.server.handler.stream!.connections() === 1, 5000, 'the stream')

    await first.server.close()
    const off = await flagFileServer({ port, file: first.file, live: false })
    // The stream drops; a fallback poll (every 0.8–1.2 s) brings a 200 that advertises no stream
    // (a new body without `eventStreams`, so a new ETag).
    await waitFor(() => off.count.get('ofrep.bulk') >= 1, 5000, 'a poll while the stream is down')
    await new Promise((r) => setTimeout(r, 1000))
    const before = sent.length
    await new Promise((r) => setTimeout(r, 5000))
    // Before: about 17 more requests in these 5 s (polls, and the stream dialled on its backoff).
    expect(sent.slice(before)).toEqual([])
    expect(c.getStatus().state).toBe('ready')

    // Back on: the next answer that advertises the stream opens it, and a change is heard again.
    await off.server.close()
    const on = await flagFileServer({ port, file: first.file })
    await c.refresh()
    await waitFor(() => on.server.handler.stream!.connections() === 1, 5000, 'the stream again')
    await writeFile(first.file, JSON.stringify(definitions(true)))
    await waitFor(() => c.getGate('kill-switch') === true, 5000, 'a change on the reopened stream')
  }, 30_000)
})

/** A minimal OFREP server whose stream the test writes to. */
async function handMadeServer(options: { streamStatus?: number; advertise?: boolean } = {}) {
  const streams: ServerResponse[] = []
  const bulk: Array<{ url: string; ifNoneMatch?: string }> = []
  let streamRequests = 0
  let value = false
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/ofrep/v1/evaluate/flags')) {
      bulk.push({ url: req.url, ifNoneMatch: req.headers['if-none-match'] as string | undefined })
      req.resume()
      req.on('end', () => {
        if (options.advertise === false && req.headers['if-none-match'] === `"${value}"`) return void res.writeHead(304, { ETag: `"${value}"` }).end()
        const streams = options.advertise === false ? {} : { eventStreams: [{ type: 'websocket', url: 'ws://nope' }, { type: 'sse', endpoint: { requestUri: '/stream' } }] }
        const body = JSON.stringify({ flags: [{ key: 'kill-switch', value, reason: 'STATIC' }], ...streams })
        res.writeHead(200, { 'Content-Type': 'application/json', ETag: `"${value}"` })
        res.end(body)
      })
      return
    }
    if (req.url === '/stream') {
      streamRequests++
      if (options.streamStatus) {
        res.writeHead(options.streamStatus, { 'Content-Type': 'text/plain' })
        return res.end('nope')
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write('retry: 100\n\n')
      streams.push(res)
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  cleanup.push(
    () =>
      new Promise<void>((done) => {
        for (const s of streams) s.destroy()
        server.closeAllConnections()
        server.close(() => done())
      }),
  )
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    bulk,
    streams,
    streamRequests: () => streamRequests,
    setValue: (v: boolean) => (value = v),
    send: (text: string) => streams.at(-1)?.write(text),
  }
}

describe('live updates against a stream the test controls', () => {
  it('refetches with the ETag and flagConfigEtag on a notice, ignores unknown types, and reads split chunks', async () => {
    const s = await handMadeServer()
    const c = client(s.url)
    await c.start()
    await waitFor(() => s.streams.length === 1, 5000, 'the stream')
    expect(s.bulk.length).toBe(1)

    s.send('data: {"type":"configurationChanged"}\n\n: ping\n\n')
    s.send('data: not json\n\n')
    await new Promise((r) => setTimeout(r, 300))
    expect(s.bulk.length).toBe(1)

    s.setValue(true)
    s.send('data: {"type":"refetch')
    await new Promise((r) => setTimeout(r, 50))
    s.send('Evaluation","etag":"v 2"}\r')
    await new Promise((r) => setTimeout(r, 50))
    s.send('\n\r\n')
    await waitFor(() => c.getGate('kill-switch') === true, 5000, 'the refetch')
    expect(s.bulk.length).toBe(2)
    // A space as `+` (the query's form encoding: URLSearchParams, Go's ParseQuery and qs read a space).
    expect(s.bulk[1].url).toBe('/ofrep/v1/evaluate/flags?flagConfigEtag=v+2')
    expect(s.bulk[1].ifNoneMatch).toBe('"false"')
  })

  it("sends a notice's lastModified back as flagConfigLastModified (OFREP ADR-0008), beside flagConfigEtag", async () => {
    const s = await handMadeServer()
    const c = client(s.url)
    await c.start()
    await waitFor(() => s.streams.length === 1, 5000, 'the stream')
    // Epoch seconds (what the spec recommends), an ISO date with the etag, and a lastModified that is neither.
    s.send('data: {"type":"refetchEvaluation","lastModified":1771622898}\n\n')
    await waitFor(() => s.bulk.length === 2, 5000, 'the first refetch')
    // Before: `/ofrep/v1/evaluate/flags`, so a server that tells a replica behind by this mark could not.
    expect(s.bulk[1].url).toBe('/ofrep/v1/evaluate/flags?flagConfigLastModified=1771622898')
    // Past the 500 ms floor between refetches for notices.
    await new Promise((r) => setTimeout(r, 600))
    s.send('data: {"type":"refetchEvaluation","etag":"v3","lastModified":"2026-02-20T21:28:18Z"}\n\n')
    await waitFor(() => s.bulk.length === 3, 5000, 'the second refetch')
    expect(s.bulk[2].url).toBe('/ofrep/v1/evaluate/flags?flagConfigEtag=v3&flagConfigLastModified=2026-02-20T21%3A28%3A18Z')
    await new Promise((r) => setTimeout(r, 600))
    s.send('data: {"type":"refetchEvaluation","lastModified":{"at":1}}\n\n')
    await waitFor(() => s.bulk.length === 4, 5000, 'the third refetch')
    expect(s.bulk[3].url).toBe('/ofrep/v1/evaluate/flags')
    // Fields a server without `omitempty` (Go, Java) writes empty name no version. Before:
    // `?flagConfigEtag=&flagConfigLastModified=`, which a server reads as a version it never served.
    await new Promise((r) => setTimeout(r, 600))
    s.send('data: {"type":"refetchEvaluation","etag":"","lastModified":""}\n\n')
    await waitFor(() => s.bulk.length === 5, 5000, 'the fourth refetch')
    expect(s.bulk[4].url).toBe('/ofrep/v1/evaluate/flags')
  })

  // OFREP 0.3.0 (sseEvent.event): "Providers must inspect `data.type` rather than this field for
  // event routing." A vendor that names its events (`event: flagsChanged`) still sends OFREP
  // notices. Before, they were dropped as not `message`: the stream was open, so nothing polled,
  // and the page showed no change until a reload or a refocus.
  it('acts on a refetchEvaluation notice whatever its `event:` field names (OFREP routes by data.type)', async () => {
    const s = await handMadeServer()
    const c = client(s.url)
    await c.start()
    await waitFor(() => s.streams.length === 1, 5000, 'the stream')
    s.setValue(true)
    s.send('event: flagsChanged\ndata: {"type":"refetchEvaluation","etag":"v2"}\n\n')
    const took = await waitFor(() => c.getGate('kill-switch') === true, 5000, 'the change')
    expect(took).toBeLessThan(2000)
    expect(s.bulk.length).toBe(2)
    expect(s.bulk[1].url).toBe('/ofrep/v1/evaluate/flags?flagConfigEtag=v2')
    // The type in the data still decides: an unknown one under any event name is ignored.
    await new Promise((r) => setTimeout(r, 600))
    s.send('event: refetchEvaluation\ndata: {"type":"somethingNew"}\n\n')
    await new Promise((r) => setTimeout(r, 600))
    expect(s.bulk.length).toBe(2)
  })

  it('reconnects a stream that hangs (no heartbeat within the timeout)', async () => {
    const s = await handMadeServer()
    const c = client(s.url, { liveUpdates: { heartbeatTimeoutMs: 300 } })
    await c.start()
    await waitFor(() => s.streamRequests() === 1, 5000, 'the stream')
    // Nothing more is written: the watchdog drops it and the backoff (1–2 s at first) reconnects.
    await waitFor(() => s.streamRequests() >= 2, 8000, 'a reconnect')
    // After the reconnect, one conditional refetch catches up on what the silence may have hidden.
    await waitFor(() => s.bulk.length >= 2, 5000, 'the catch-up refetch')
    expect(s.bulk[1].ifNoneMatch).toBe('"false"')
  })

  it('closes the stream after the page is hidden past inactivityDelaySec; on visible, refetches in full and reconnects', async () => {
    const s = await handMadeServer()
    let visible = true
    const handlers = new Set<EnvironmentHandlers>()
    const environment: Environment = {
      online: () => true,
      visible: () => visible,
      listen(h) {
        handlers.add(h)
        return () => handlers.delete(h)
      },
    }
    const c = client(s.url, { environment, refreshOnFocus: false, liveUpdates: { inactivityDelaySec: 1 } })
    await c.start()
    await waitFor(() => s.streams.length === 1, 5000, 'the stream')
    const open = () => s.streams.filter((r) => !r.destroyed && !r.writableEnded && !r.socket?.destroyed).length

    visible = false
    for (const h of handlers) h.onHidden?.()
    await waitFor(() => open() === 0, 5000, 'the stream to close while hidden')
    const bulkBefore = s.bulk.length

    visible = true
    for (const h of handlers) h.onVisible?.()
    await waitFor(() => s.bulk.length > bulkBefore && s.streamRequests() === 2, 5000, 'a refetch and a new stream')
    // OFREP: after inactivity, a full, unconditional refetch.
    expect(s.bulk[bulkBefore].ifNoneMatch).toBeUndefined()
  })

  it('a page about to be frozen closes the stream at once (a frozen leader would keep every tab from notices); on resume, refetches in full and reconnects', async () => {
    const s = await handMadeServer()
    const handlers = new Set<EnvironmentHandlers>()
    const environment: Environment = { online: () => true, visible: () => true, listen: (h) => (handlers.add(h), () => handlers.delete(h)) }
    // Hidden for an hour would not close it: only the freeze does.
    const c = client(s.url, { environment, refreshOnFocus: false, liveUpdates: { inactivityDelaySec: 3600 } })
    await c.start()
    await waitFor(() => s.streams.length === 1, 5000, 'the stream')
    const open = () => s.streams.filter((r) => !r.destroyed && !r.writableEnded && !r.socket?.destroyed).length

    for (const h of handlers) h.onFreeze?.()
    await waitFor(() => open() === 0, 5000, 'the stream to close on freeze')
    const bulkBefore = s.bulk.length

    for (const h of handlers) h.onResume?.()
    await waitFor(() => s.bulk.length > bulkBefore && s.streamRequests() === 2, 5000, 'a refetch and a new stream')
    expect(s.bulk[bulkBefore].ifNoneMatch).toBeUndefined()
  })

  it('keeps the stream while hidden for less than inactivityDelaySec', async () => {
    const s = await handMadeServer()
    const handlers = new Set<EnvironmentHandlers>()
    const environment: Environment = { online: () => true, visible: () => true, listen: (h) => (handlers.add(h), () => handlers.delete(h)) }
    const c = client(s.url, { environment, refreshOnFocus: false, liveUpdates: { inactivityDelaySec: 60 } })
    await c.start()
    await waitFor(() => s.streams.length === 1, 5000, 'the stream')
    for (const h of handlers) h.onHidden?.()
    await new Promise((r) => setTimeout(r, 500))
    for (const h of handlers) h.onVisible?.()
    await new Promise((r) => setTimeout(r, 300))
    expect(s.streamRequests()).toBe(1)
    expect(s.bulk.length).toBe(1)
  })

  it('a server that advertises no stream costs no extra request, even when every answer is a 304', async () => {
    const s = await handMadeServer({ advertise: false })
    const bootstrap = { context: { targetingKey: 'user-1' }, flags: [{ key: 'kill-switch', value: false }], etag: '"false"', fetchedAt: Date.now() }
    const c = client(s.url, { bootstrap })
    await c.start()
    await new Promise((r) => setTimeout(r, 300))
    for (let i = 0; i < 4; i++) await c.refresh()
    await new Promise((r) => setTimeout(r, 300))
    // The first answer is a 304 (nothing says yet whether a stream exists): one full refetch asks.
    // After that 200 without `eventStreams`, the 304s that follow bring nothing more.
    const unconditional = s.bulk.filter((b) => b.ifNoneMatch === undefined).length
    expect(unconditional).toBeLessThanOrEqual(1)
    expect(s.bulk.length).toBe(6)
    expect(s.streamRequests()).toBe(0)
  })

  // OFREP: entries of unknown types are ignored and the provider goes on polling. Where nothing
  // can be remembered for a 304 (Node, or a browser that blocks storage: a third-party iframe),
  // each 304 after a 200 that advertised only such entries loaded the chunk again, which found
  // nothing remembered and asked again in full: two requests per poll, and no poll ever a 304 alone.
  it('a server that advertises only streams the client cannot use (another type) costs no extra request per 304', async () => {
    const s = await startStreamingOfrep(() => [{ type: 'websocket', url: 'wss://push.example/flags' }])
    cleanup.push(() => s.close())
    const c = client(s.url)
    await c.start()
    await new Promise((r) => setTimeout(r, 300))
    for (let i = 0; i < 4; i++) {
      await c.refresh()
      await new Promise((r) => setTimeout(r, 200))
    }
    // The first 200, then one 304 per refresh. Before: 9 (each 304 followed by a full refetch).
    expect(s.bulk.length).toBe(5)
    expect(s.streamHeaders.length).toBe(0)
  })

  // WHATWG HTML (server-sent events): a 204 No Content tells the client to stop reconnecting (a
  // server that will not stream for it). Before, it was dialled again on the backoff, every minute
  // at most, from every open tab, for as long as the page stayed open.
  it('a stream endpoint that answers 204 is not dialled again; the page polls instead', async () => {
    const s = await handMadeServer({ streamStatus: 204 })
    const c = client(s.url, { liveUpdates: { fallbackPollMs: 1000 } })
    await c.start()
    await waitFor(() => s.streamRequests() === 1, 5000, 'the stream to be tried')
    // Backoff: 2–4 s, then 4–8 s: a second try within 4.5 s before.
    await new Promise((r) => setTimeout(r, 4500))
    expect(s.streamRequests()).toBe(1)
    s.setValue(true)
    await waitFor(() => c.getGate('kill-switch') === true, 3000, 'a poll to bring the change')
  })

  it('backs off a stream endpoint that keeps failing, and polls meanwhile', async () => {
    const s = await handMadeServer({ streamStatus: 503 })
    const c = client(s.url, { liveUpdates: { fallbackPollMs: 1000 } })
    await c.start()
    await new Promise((r) => setTimeout(r, 2500))
    // Backoff: 1–2 s, then 2–4 s: at most 3 tries in 2.5 s (a storm would be hundreds).
    expect(s.streamRequests()).toBeGreaterThanOrEqual(1)
    expect(s.streamRequests()).toBeLessThanOrEqual(3)
    // Polling while the stream is down (every 0.8–1.2 s here, the floor of fallbackPollMs).
    expect(s.bulk.length).toBeGreaterThanOrEqual(2)
    s.setValue(true)
    await waitFor(() => c.getGate('kill-switch') === true, 3000, 'a poll to bring the change')
  })
})

describe('liveUpdates numbers that are not usable (0, NaN, a negative, Infinity: an unset environment variable)', () => {
  // `refreshIntervalMs: 0` turns polling off, so `fallbackPollMs: 0` reads as "no fallback polling".
  // Before, it polled on a 0 ms timer: while the stream was down (here it answers 503) the page
  // sent bulk requests back to back, as fast as the server answered, with no warning. Like the
  // client's other numbers, each falls back to its default with a warning naming it.
  it('fall back to their defaults with a warning: fallbackPollMs 0 while the stream is down is no request storm', async () => {
    const s = await handMadeServer({ streamStatus: 503 })
    const logger = createTestLogger()
    const c = client(s.url, { logger, liveUpdates: { fallbackPollMs: 0, heartbeatTimeoutMs: Number.NaN, inactivityDelaySec: -1 } })
    await c.start()
    await waitFor(() => s.streamRequests() >= 1, 5000, 'the stream to be tried')
    await new Promise((r) => setTimeout(r, 2000))
    // The default fallback poll is every 24–36 s: nothing more in these 2 s than the first request.
    expect(s.bulk.length).toBe(1)
    expect(s.streamRequests()).toBeLessThanOrEqual(2)
    for (const name of ['fallbackPollMs', 'heartbeatTimeoutMs', 'inactivityDelaySec']) expect(logger.warnings.some((w) => w.includes(name))).toBe(true)
    expect(c.getStatus().state).toBe('ready')
  })
})

describe('liveUpdates.fallbackPollMs below a second (30 typed for 30 s)', () => {
  // Like `refreshIntervalMs` (flags/options.ts), a poll period under a second is a storm, not a
  // refresh: raised to 1,000 ms with a warning naming it. Before, 30 polled every 24–36 ms for as
  // long as the stream was down, from every open tab, with no word said.
  it('is raised to 1,000 ms with a warning: no bulk request 30 ms apart while the stream is down', async () => {
    const s = await handMadeServer({ streamStatus: 503 })
    const logger = createTestLogger()
    const clock = createManualClock()
    let sent = 0
    const c = client(s.url, {
      logger,
      clock,
      random: () => 0.5, // no jitter: the poll period itself
      fetch: (input, init) => (String(input).includes('/ofrep/') && sent++, fetch(input, init)),
      liveUpdates: { fallbackPollMs: 30 },
    })
    await c.start()
    // The stream is dialled (and refused) once the first answer names it; polling runs from then on.
    await waitFor(() => s.streamRequests() >= 1, 5000, 'the stream to be tried')
    const flush = () => new Promise((r) => setImmediate(r))
    const before = sent
    clock.advance(100)
    await flush()
    expect(sent - before).toBe(0)
    // (The manual clock's now() moves with real time too: the boundary is not pinned to the ms.)
    clock.advance(700)
    await flush()
    expect(sent - before).toBe(0)
    clock.advance(400)
    await flush()
    expect(sent - before).toBe(1)
    expect(logger.warnings.filter((w) => w.includes('fallbackPollMs'))).toEqual(['[holdfast] liveUpdates.fallbackPollMs 30 raised to 1000'])
  })
})

describe('a stream that answers 200 text/event-stream and then never sends a byte', () => {
  it('does not count as open: polling goes on meanwhile, and its reconnects back off', async () => {
    const bulk: number[] = []
    let streamRequests = 0
    const server: Server = createServer((req, res) => {
      if (req.url?.startsWith('/ofrep/v1/evaluate/flags')) {
        bulk.push(Date.now())
        req.resume()
        req.on('end', () => {
          res.writeHead(200, { 'Content-Type': 'application/json', ETag: '"v1"' })
          res.end(JSON.stringify({ flags: [{ key: 'kill-switch', value: false }], eventStreams: [{ type: 'sse', endpoint: { requestUri: '/stream' } }] }))
        })
        return
      }
      streamRequests++
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.flushHeaders() // the headers, and then nothing at all
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    cleanup.push(() => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))))
    const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { liveUpdates: { heartbeatTimeoutMs: 4000, fallbackPollMs: 1000 } })
    await c.start()
    await waitFor(() => streamRequests === 1, 5000, 'the stream')
    const from = Date.now()
    await new Promise((r) => setTimeout(r, 6000))
    // Polling (every 0.8–1.2 s: the floor of fallbackPollMs) never pauses for a stream that has said
    // nothing: before, its bare headers (and each reconnect's) stopped it until the heartbeat
    // timeout (4 s here, 60 s by default).
    const times = [from, ...bulk.filter((t) => t >= from)]
    const gaps = times.slice(1).map((t, i) => t - times[i])
    expect(Math.max(...gaps)).toBeLessThan(2000)
    // Connected, dropped after 4 s of silence, back after the backoff (1–2 s): a few tries, no loop.
    expect(streamRequests).toBeLessThanOrEqual(3)
    expect(bulk.length).toBeGreaterThan(4)
  }, 15_000)
})

describe('a stream URL signed anew in every answer (a vendor token), and a change while the stream moves', () => {
  // Each answer names a new stream URL: the client moves to it. Before, the old stream was closed
  // the moment the answer came, and the new one opened a round trip later: a change announced in
  // between was announced on neither, and with polling off the page missed it for good. The old
  // stream is now kept until the new one says its first line.
  it('a change announced while the new stream connects still reaches the page', async () => {
    let value = 'v1'
    let signed = 0
    let connectDelayMs = 0
    const open = new Set<ServerResponse>()
    const dialled: string[] = []
    const server: Server = createServer((req, res) => {
      if (req.url?.startsWith('/ofrep/v1/evaluate/flags')) {
        req.resume()
        req.on('end', () => {
          res.writeHead(200, { 'Content-Type': 'application/json' })
          res.end(JSON.stringify({ flags: [{ key: 'banner', value, reason: 'STATIC' }], eventStreams: [{ type: 'sse', endpoint: { requestUri: `/stream?sig=${++signed}` } }] }))
        })
        return
      }
      dialled.push(req.url!)
      setTimeout(() => {
        if (res.destroyed) return
        res.writeHead(200, { 'Content-Type': 'text/event-stream' })
        res.write('retry: 100\n\n')
        open.add(res)
        res.on('close', () => open.delete(res))
      }, connectDelayMs)
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    cleanup.push(() => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))))
    const announce = () => {
      for (const res of open) res.write('data: {"type":"refetchEvaluation"}\n\n')
    }
    const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    await c.start()
    await waitFor(() => open.size === 1, 5000, 'the stream')
    const [first] = open

    // A change: the refetch's answer names a new URL, whose stream takes a second to answer.
    connectDelayMs = 1000
    value = 'v2'
    announce()
    await waitFor(() => c.getValue('banner', 'none') === 'v2' && dialled.length === 2, 5000, 'the first change, and the move')
    // Another change while the new stream is still connecting.
    value = 'v3'
    announce()
    const took = await waitFor(() => c.getValue('banner', 'none') === 'v3', 5000, 'the change announced during the move')
    expect(took).toBeLessThan(2000)
    // Once the newest stream opens, the one kept meanwhile closes: one stream, and it is heard.
    await waitFor(() => open.size === 1 && !open.has(first), 5000, 'the old stream to close')
    await new Promise((r) => setTimeout(r, 1500))
    expect(open.size).toBe(1)
    value = 'v4'
    announce()
    await waitFor(() => c.getValue('banner', 'none') === 'v4', 5000, 'a change on the new stream')
  })
})

describe('a server restart with 20 clients', () => {
  it('their reconnects are spread by jitter, no refetch storm, and every client ends on the new values', async () => {
    const first = await flagFileServer({ retryMs: 500 })
    const port = first.server.port
    const clients = Array.from({ length: 20 }, () => client(first.server.url))
    await Promise.all(clients.map((c) => c.start()))
    await waitFor(() => first.server.handler.stream!.connections() === 20, 5000, 'twenty streams')

    await first.server.close()
    await writeFile(first.file, JSON.stringify(definitions(true)))
    const second = await flagFileServer({ port, file: first.file, retryMs: 500 })
    const times: number[] = []
    const from = Date.now()
    await waitFor(() => {
      while (times.length < second.count.get('stream')) times.push(Date.now() - from)
      return second.server.handler.stream!.connections() === 20
    }, 15_000, 'twenty streams again')
    await waitFor(() => clients.every((c) => c.getGate('kill-switch') === true), 5000, 'the catch-up')
    await new Promise((r) => setTimeout(r, 1000))
    // One stream and one catch-up refetch per client, give or take a reconnect that raced the restart.
    expect(second.count.get('stream')).toBeLessThanOrEqual(30)
    expect(second.count.get('ofrep.bulk')).toBeLessThanOrEqual(30)
    // Spread over a second or more, not one instant: the server's `retry: 500` is below the 2 s base
    // delay, which once made every client wait exactly the base (all 20 back within 65 ms).
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(500)
  }, 30_000)
})
