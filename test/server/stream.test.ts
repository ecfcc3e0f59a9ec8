// The OFREP event stream of the reference server (CONTRACT §10): bulk answers advertise it, a file
// edit becomes a `refetchEvaluation` notice, and the ETag rules keep a notice-driven refetch honest.
import { writeFile } from 'node:fs/promises'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
// The client's parser is internal to the on-demand chunk (exporting it would pull it into the first load).
import { createSseParser, type SseEvent } from '../../packages/core/src/live/sseParser'
import { createStreamHub, type FlagdDefinitions, type FlagServer } from '@holdfast/server'
import { evaluate, recordingLogger, startServer, tempDir, timed, waitFor } from './helpers'
// The CLI's option reading is internal to the server package (bin.ts uses it).
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { parseFlagDefinitions } from '../../packages/server/src/flags/flagDefinitions'

function flagsFile(defaultVariant: 'on' | 'off'): string {
  const flags: FlagdDefinitions = { flags: { 'kill-switch': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant } } }
  return JSON.stringify(flags)
}

/** Opens the stream with fetch and records what arrives, parsed by the client's own parser. */
async function openStream(server: Pick<FlagServer, 'url'>, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const response = await fetch(`${server.url}/holdfast/v1/stream`, { headers, signal: controller.signal })
  const events: SseEvent[] = []
  const retries: number[] = []
  let raw = ''
  let ended = false
  const parser = createSseParser({ onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms) })
  const done = (async () => {
    if (!response.body) return
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true })
        raw += text
        parser.push(text)
      }
    } catch {
      // aborted
    }
    ended = true
  })()
  return {
    response,
    events,
    retries,
    raw: () => raw,
    ended: () => ended,
    notices: () => events.map((e) => JSON.parse(e.data) as { type: string; etag?: string }),
    close: async () => {
      controller.abort()
      await done
    },
  }
}

/** Moves `Date.now()` by `ms` (NTP stepping the wall clock) until the test ends. */
function stepWallClock(ms: number) {
  const wall = Date.now.bind(Date)
  vi.spyOn(Date, 'now').mockImplementation(() => wall() + ms)
}

/** An origin for `--flags-url` that serves `document`, or 503s during `outage`. */
async function withOrigin(run: (origin: { url: string; document: string; outage(server: FlagServer, meanwhile: () => void): Promise<void> }) => Promise<void>) {
  let failing = false
  const origin = {
    url: '',
    document: flagsFile('off'),
    /** Fails until the server says failing, runs `meanwhile`, then answers until the server says ok again. */
    async outage(server: FlagServer, meanwhile: () => void) {
      failing = true
      await waitFor(() => server.source.status().state === 'failing', 5000)
      meanwhile()
      failing = false
      await waitFor(() => server.source.status().state === 'ok', 5000)
    },
  }
  const listener = createServer((_req, res) => {
    if (failing) return void res.writeHead(503).end()
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(origin.document)
  })
  await new Promise<void>((done) => listener.listen(0, '127.0.0.1', done))
  origin.url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/flags.json`
  try {
    await run(origin)
  } finally {
    vi.restoreAllMocks()
    listener.closeAllConnections()
    await new Promise((r) => listener.close(r))
  }
}

async function setup(options: Parameters<typeof startServer>[0] = {}) {
  const dir = await tempDir()
  const file = join(dir, 'flags.json')
  await writeFile(file, flagsFile('off'))
  const server = await startServer({ flags: file, ...options })
  return { file, server }
}

describe('the event stream', () => {
  it('is advertised in bulk answers as an OFREP sse stream', async () => {
    const { server } = await setup()
    const body = (await (await evaluate(server, { targetingKey: 'u' })).json()) as { eventStreams?: unknown }
    expect(body.eventStreams).toEqual([{ type: 'sse', endpoint: { requestUri: '/holdfast/v1/stream' }, inactivityDelaySec: 120 }])
  })

  it('opens with a retry field and sends a refetch notice with the new version when the file is edited', async () => {
    const { file, server } = await setup()
    const stream = await openStream(server)
    expect(stream.response.status).toBe(200)
    expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    await waitFor(() => stream.retries.length > 0, 5000)
    expect(stream.retries[0]).toBe(3000)
    const before = server.source.current()!.version

    await writeFile(file, flagsFile('on'))
    await waitFor(() => stream.events.length > 0, 5000)
    const [notice] = stream.notices()
    expect(notice.type).toBe('refetchEvaluation')
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toMatch(/^holdfast_stream_connections 1$/m)
    expect(metrics).toMatch(/^holdfast_stream_notices_total 1$/m)
    expect(notice.etag).toBe(server.source.current()!.version)
    expect(notice.etag).not.toBe(before)
    await stream.close()
  })

  it('sends heartbeat comments while nothing changes', async () => {
    const { server } = await setup({ liveUpdates: { heartbeatMs: 1000 } })
    const stream = await openStream(server)
    await waitFor(() => (stream.raw().match(/: ping/g) ?? []).length >= 2, 5000)
    expect(stream.events).toEqual([])
    await stream.close()
  })

  it('never answers 304 to a refetch that names another version than the one served', async () => {
    const { server } = await setup()
    const first = await evaluate(server, { targetingKey: 'u' })
    const etag = first.headers.get('etag')!
    const version = server.source.current()!.version
    const ask = (query: string) =>
      fetch(`${server.url}/ofrep/v1/evaluate/flags${query}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'If-None-Match': etag },
        body: JSON.stringify({ context: { targetingKey: 'u' } }),
      })
    expect((await ask('')).status).toBe(304)
    expect((await ask(`?flagConfigEtag=${encodeURIComponent(version)}`)).status).toBe(304)
    // A notice from a newer replica (or an old one) names a version this server does not serve.
    const other = await ask('?flagConfigEtag=some-other-version')
    expect(other.status).toBe(200)
    expect(((await other.json()) as { flags: unknown[] }).flags.length).toBe(1)
  })

  it('a request that sends the optional query parameters empty (flagConfigEtag=, flagConfigLastModified=) is one that names no version: answered at once, 304 to its ETag', async () => {
    // Before: `flagConfigEtag=` named the version "", never served: the request was held the whole
    // catch-up wait (2 s) and then answered 200 in full, its If-None-Match ignored.
    const { server } = await setup()
    const first = await evaluate(server, { targetingKey: 'u' })
    const { value: response, ms } = await timed(() =>
      fetch(`${server.url}/ofrep/v1/evaluate/flags?flagConfigEtag=&flagConfigLastModified=`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'If-None-Match': first.headers.get('etag')! },
        body: JSON.stringify({ context: { targetingKey: 'u' } }),
      }),
    )
    expect(response.status).toBe(304)
    expect(ms).toBeLessThan(1000)
  })

  it('a refetch whose body arrives once the drain began is answered at once, not held for its version', async () => {
    // Before: close() let the held refetches go, but one still being read then waited the whole
    // catch-up (2 s) for a version that could no longer come, and the shutdown waited with it.
    const { server } = await setup()
    const body = JSON.stringify({ context: { targetingKey: 'u' } })
    const req = request(`${server.url}/ofrep/v1/evaluate/flags?flagConfigEtag=not-served-yet`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length), Expect: '100-continue' },
    })
    const answered = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode!)
      })
      req.on('error', reject)
    })
    // 100 Continue: the server took the request (past the drain check) and waits for its body.
    await new Promise((resolve) => req.on('continue', resolve))
    const { ms } = await timed(async () => {
      const closing = server.close()
      req.end(body)
      expect(await answered).toBe(200)
      await closing
    })
    expect(ms).toBeLessThan(1000)
  })

  it('a refetch over the body limit is refused at once, not first held for the version it names', async () => {
    // Before: the catch-up wait came before the size check, so the refusal came only after 2 s, the
    // oversized body held in memory the while.
    const { server } = await setup({ limits: { maxBodyBytes: 64 } })
    const { value: response, ms } = await timed(() =>
      fetch(`${server.url}/ofrep/v1/evaluate/flags?flagConfigEtag=not-served-yet`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ context: { targetingKey: 'u', pad: 'x'.repeat(200) } }),
      }),
    )
    expect(response.status).toBe(400)
    expect(((await response.json()) as { errorCode: string }).errorCode).toBe('INVALID_CONTEXT')
    expect(ms).toBeLessThan(1000)
  })

  it('a held refetch whose client left is not evaluated when the wait ends', async () => {
    // Before: every held refetch was evaluated when its wait ended, its client there or not: a
    // flood of refetches naming one made-up version, each dropped at once, came back 2 s later as
    // one burst of evaluations in a single tick, past the load shedder that had let them in.
    const { server } = await setup()
    const refetch = (key: string) => {
      const body = JSON.stringify({ context: { targetingKey: key } })
      const req = request(`${server.url}/ofrep/v1/evaluate/flags?flagConfigEtag=made-up`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } })
      req.on('error', () => {})
      req.end(body)
      return req
    }
    const left = Array.from({ length: 50 }, (_, i) => refetch(`left-${i}`))
    // Answered once the held ones (sent before it) are read: then they are held too.
    expect((await evaluate(server, { targetingKey: 'plain' })).status).toBe(200)
    for (const req of left) req.destroy()
    const stayed = new Promise<number>((resolve) => refetch('stayed').on('response', (res) => (res.resume(), resolve(res.statusCode!))))
    expect(await stayed).toBe(200)
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    // Evaluated: the plain request and the refetch whose client stayed, none of the 50.
    expect(metrics).toMatch(/^holdfast_answer_cache_total\{result="miss"\} 2$/m)
  })

  it('refetches naming made-up versions cannot take the catch-up from a real notice\'s refetch', async () => {
    // Before: 16 distinct unknown versions filled the catch-up's slots for 2 s each, so anyone
    // sending 8 requests a second with random `flagConfigEtag`s made every real refetch (a tab
    // told of a version this replica is about to take) be answered at once from the old version:
    // the tab applied it and, its notice spent, heard nothing more.
    const { server } = await setup()
    const refetch = (version: string, key: string) => {
      const body = JSON.stringify({ context: { targetingKey: key } })
      const req = request(`${server.url}/ofrep/v1/evaluate/flags?flagConfigEtag=${encodeURIComponent(version)}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } })
      const answered = new Promise<{ status: number; body: any }>((resolve, reject) => {
        req.on('response', (res) => {
          let text = ''
          res.on('data', (chunk) => (text += chunk))
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }))
        })
        req.on('error', reject)
      })
      req.end(body)
      return answered
    }
    const flood = Array.from({ length: 40 }, (_, i) => refetch(`made-up-${i}-${Math.random()}`, `attacker-${i}`))
    // Read by the server once a later request on another connection is answered.
    expect((await evaluate(server, { targetingKey: 'plain' })).status).toBe(200)
    const next: FlagdDefinitions = JSON.parse(flagsFile('on'))
    const parsed = parseFlagDefinitions(JSON.stringify(next))
    if (!parsed.ok) throw new Error(parsed.error)
    const real = refetch(parsed.version, 'tab-user')
    expect((await evaluate(server, { targetingKey: 'plain-2' })).status).toBe(200)
    // The version the tab was told of arrives here a moment later.
    server.setFlags(next)
    expect(server.source.current()!.version).toBe(parsed.version)
    const answer = await real
    expect(answer.status).toBe(200)
    expect(answer.body.flags).toEqual([expect.objectContaining({ key: 'kill-switch', value: true })])
    for (const held of await Promise.all(flood)) expect(held.status).toBe(200)
  })

  it('answers 304 to a tag from another context only when that context gets the very same body', async () => {
    const { server } = await setup()
    server.setFlags({ flags: { beta: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'targetingKey' }, 'a'] }, 'on', 'off'] } } } })
    const a = (await evaluate(server, { targetingKey: 'a' })).headers.get('etag')!
    const ask = (targetingKey: string) =>
      fetch(`${server.url}/ofrep/v1/evaluate/flags`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'If-None-Match': a },
        body: JSON.stringify({ context: { targetingKey } }),
      })
    expect((await ask('b')).status).toBe(200)
    expect((await ask('a')).status).toBe(304)
  })

  it('changes the ETag of every context when the definitions change', async () => {
    const { server } = await setup()
    const before = (await evaluate(server, { targetingKey: 'a' })).headers.get('etag')
    server.setFlags({ flags: { 'kill-switch': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off' }, other: { state: 'ENABLED', variants: { x: 1 }, defaultVariant: 'x' } } })
    const after = (await evaluate(server, { targetingKey: 'a' })).headers.get('etag')
    expect(after).not.toBe(before)
  })

  it('refuses streams past the bound with 503 and a Retry-After', async () => {
    const { server } = await setup({ liveUpdates: { maxConnections: 2 } })
    const a = await openStream(server)
    const b = await openStream(server)
    const refused = await fetch(`${server.url}/holdfast/v1/stream`)
    expect(refused.status).toBe(503)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(server.handler.stream!.connections()).toBe(2)
    await a.close()
    await waitFor(() => server.handler.stream!.connections() === 1, 5000)
    const c = await openStream(server)
    expect(c.response.status).toBe(200)
    await Promise.all([b.close(), c.close()])
  })

  it('needs the API key like the other routes', async () => {
    const { server } = await setup({ apiKey: 'secret' })
    expect((await fetch(`${server.url}/holdfast/v1/stream`)).status).toBe(401)
    const stream = await openStream(server, { Authorization: 'Bearer secret' })
    expect(stream.response.status).toBe(200)
    await stream.close()
  })

  it('ends open streams when the server shuts down, without waiting for the drain timeout', async () => {
    const { server } = await setup({ drainTimeoutMs: 30_000 })
    const stream = await openStream(server)
    await waitFor(() => stream.retries.length > 0, 5000)
    const started = Date.now()
    await server.close()
    await waitFor(() => stream.ended(), 5000)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('spreads the notices that end an outage over the recovery window', async () => {
    // Each stream's delay is random() × window; an injected random puts all of them at 600 ms.
    const { server } = await setup({ liveUpdates: { recoveryWindowMs: 1200, random: () => 0.5 } })
    const streams = await Promise.all(Array.from({ length: 6 }, () => openStream(server)))
    await waitFor(() => streams.every((s) => s.retries.length > 0), 5000)
    const hub = server.handler.stream!
    const started = Date.now()
    hub.notify({ type: 'refetchEvaluation', etag: 'v2' }, true)
    expect(hub.sent()).toBe(0)
    await waitFor(() => streams.every((s) => s.events.length > 0), 5000)
    expect(Date.now() - started).toBeGreaterThanOrEqual(550)
    expect(hub.sent()).toBe(6)
    // An ordinary edit is not held back.
    hub.notify({ type: 'refetchEvaluation', etag: 'v3' })
    expect(hub.sent()).toBe(12)
    await Promise.all(streams.map((s) => s.close()))
  })

  it('with --flags-url: a change goes out at once, but the change that ends an outage is spread over the window', async () => {
    await withOrigin(async (origin) => {
      const server = await startServer({ flags: undefined, flagsUrl: origin.url, pollIntervalSeconds: 0.1, liveUpdates: { recoveryWindowMs: 2500, random: () => 0.9 } })
      const stream = await openStream(server)
      await waitFor(() => stream.retries.length > 0, 5000)

      origin.document = flagsFile('on')
      const ordinary = Date.now()
      await waitFor(() => stream.events.length === 1, 5000)
      expect(Date.now() - ordinary).toBeLessThan(1500)

      await origin.outage(server, () => (origin.document = flagsFile('off')))
      const recovered = Date.now()
      // The notice waits random() × window = 2.25 s here.
      await new Promise((r) => setTimeout(r, 1000))
      expect(stream.events.length).toBe(1)
      await waitFor(() => stream.events.length === 2, 5000)
      expect(Date.now() - recovered).toBeGreaterThanOrEqual(2000)
      await stream.close()
    })
  })

  // "Within the last minute" of a failure is read on a clock NTP cannot step (the hub's `now`,
  // fixed here: no time passes on it), whatever the wall clock does meanwhile.
  it('with --flags-url: the wall clock stepped forward an hour during an outage, the recovery is still spread (not every tab at once)', async () => {
    await withOrigin(async (origin) => {
      const server = await startServer({ flags: undefined, flagsUrl: origin.url, pollIntervalSeconds: 0.1, liveUpdates: { recoveryWindowMs: 2500, random: () => 0.9, now: () => 5_000 } })
      const streams = await Promise.all(Array.from({ length: 3 }, () => openStream(server)))
      await waitFor(() => streams.every((s) => s.retries.length > 0), 5000)
      await origin.outage(server, () => {
        origin.document = flagsFile('on')
        stepWallClock(3_600_000)
      })
      await new Promise((r) => setTimeout(r, 1000))
      // Before, the outage looked an hour old: all three got the notice at the recovery.
      expect(streams.map((s) => s.events.length)).toEqual([0, 0, 0])
      await waitFor(() => streams.every((s) => s.events.length === 1), 5000)
      await Promise.all(streams.map((s) => s.close()))
    })
  })

  it('with --flags-url: the wall clock set back an hour after a brief failure, an ordinary edit two minutes on goes out at once', async () => {
    let steady = 5_000
    await withOrigin(async (origin) => {
      const server = await startServer({ flags: undefined, flagsUrl: origin.url, pollIntervalSeconds: 0.1, liveUpdates: { recoveryWindowMs: 2500, random: () => 0.9, now: () => steady } })
      const stream = await openStream(server)
      await waitFor(() => stream.retries.length > 0, 5000)
      // The origin fails a moment and comes back unchanged: no notice, nothing to spread.
      await origin.outage(server, () => {})
      steady += 120_000
      stepWallClock(-3_600_000)
      origin.document = flagsFile('on')
      const edited = Date.now()
      await waitFor(() => stream.events.length === 1, 5000)
      // Before, the failure looked an hour ahead ("within the minute"): held back 2.25 s.
      expect(Date.now() - edited).toBeLessThan(1500)
      await stream.close()
    })
  })

  it('proxy mode: the wall clock stepped forward an hour during an outage, the change the recovering round finds is still spread', async () => {
    const hub = createStreamHub({ recoveryWindowMs: 2500, random: () => 0.9, now: () => 5_000 })
    const host = createServer((req, res) => hub.handle(req, res))
    await new Promise<void>((done) => host.listen(0, '127.0.0.1', done))
    try {
      const streams = await Promise.all(Array.from({ length: 3 }, () => openStream({ url: `http://127.0.0.1:${(host.address() as AddressInfo).port}` })))
      await waitFor(() => streams.every((s) => s.retries.length > 0), 5000)
      // The re-ask rounds: the upstream down for the first, back with a change (told as news, as
      // it is found) after the wall clock's step.
      let rounds = 0
      let news = () => {}
      let recovered = () => {}
      const recovering = new Promise<void>((done) => (recovered = done))
      hub.watchUpstream(
        async () => {
          if (++rounds === 1) return { outcome: 'failed', changed: [], answered: 0 }
          if (rounds === 2) {
            stepWallClock(3_600_000)
            news()
            recovered()
            return { outcome: 'ok', changed: ['u1'], answered: 1 }
          }
          return { outcome: 'ok', changed: [], answered: 1 }
        },
        50,
        undefined,
        undefined,
        (listener) => ((news = listener), () => {}),
      )
      // (Not waitFor: it reads the wall clock, which jumps an hour in that round.)
      await recovering
      await new Promise((r) => setTimeout(r, 1000))
      // Before, the failed round looked an hour old: all three got the notice 250 ms after the news.
      expect(streams.map((s) => s.events.length)).toEqual([0, 0, 0])
      await waitFor(() => streams.every((s) => s.events.length === 1), 5000)
      await Promise.all(streams.map((s) => s.close()))
    } finally {
      vi.restoreAllMocks()
      hub.close()
      host.closeAllConnections()
      await new Promise((r) => host.close(r))
    }
  })

  it('the CLI turns it off with --no-live-updates and bounds it with --max-streams', () => {
    const off = buildServerOptions({ flags: 'flags.json', 'no-live-updates': true }, {})
    expect(off.ok && off.options.liveUpdates).toBe(false)
    const bounded = buildServerOptions({ flags: 'flags.json', 'max-streams': '50' }, {})
    expect(bounded.ok && bounded.options.liveUpdates).toEqual({ maxConnections: 50 })
    const on = buildServerOptions({ flags: 'flags.json' }, {})
    expect(on.ok && on.options.liveUpdates).toBeUndefined()
    expect(buildServerOptions({ flags: 'flags.json', 'max-streams': '0' }, {}).ok).toBe(false)
    for (const given of ['NaN', '-3', '2.5', 'many']) {
      const refused = buildServerOptions({ flags: 'flags.json', 'max-streams': given }, {})
      expect(refused.ok ? 'accepted' : refused.error, given).toMatch(/--max-streams/)
    }
  })

  it('a --max-streams above half of --max-connections is lowered, and the start-up log says so with both numbers', async () => {
    const logger = recordingLogger()
    await startServer({ maxConnections: 100, liveUpdates: { maxConnections: 5000 }, logger })
    expect(logger.lines.filter((line) => /max-streams/.test(line))).toEqual([expect.stringMatching(/^\[holdfast-server\] .*--max-streams 5000 .*50 /)])
    // Within the cap, or not given: nothing to say.
    for (const liveUpdates of [{ maxConnections: 50 }, {}]) {
      const quiet = recordingLogger()
      await startServer({ maxConnections: 100, liveUpdates, logger: quiet })
      expect(quiet.lines.filter((line) => /max-streams/.test(line))).toEqual([])
    }
  })

  it('is absent with liveUpdates: false', async () => {
    const { server } = await setup({ liveUpdates: false })
    const body = (await (await evaluate(server, { targetingKey: 'u' })).json()) as { eventStreams?: unknown }
    expect(body.eventStreams).toBeUndefined()
    expect((await fetch(`${server.url}/holdfast/v1/stream`)).status).toBe(404)
  })
})
