// The cached answer's short cuts (the answer cache keyed by the request body, CORS headers added
// as the head is written, counts kept as plain numbers until a scrape) skip work, never checks:
// what a client or an operator sees is the same as on the slow path.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import { Histogram, Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { answerKey, createAnswerCache, RAW_KEY_MAX_CHARS } from '../../packages/server/src/ofrep/answerCache'
import { CorsResponse, createFlagHandler, createServerMetrics, type FlagHandler, type Middleware } from '@holdfast/server'
import { DEMO_FLAGS, post, rawConnection, startServer } from './helpers'

const BULK = '/ofrep/v1/evaluate/flags'
const BODY = JSON.stringify({ context: { targetingKey: 'u', plan: 'pro' } })

describe('a repeated request body', () => {
  it('still needs the API key: the same bytes that were just answered get 401 without it', async () => {
    const server = await startServer({ apiKey: 'k-1' })
    const first = await post(`${server.url}${BULK}`, BODY, { 'X-API-Key': 'k-1' })
    expect(first.status).toBe(200)
    const etag = first.headers.get('etag')!
    const attempts: Array<Record<string, string>> = [{}, { 'X-API-Key': 'k-2' }, { Authorization: 'Bearer k-2', 'If-None-Match': etag }]
    for (const headers of attempts) {
      const denied = await post(`${server.url}${BULK}`, BODY, headers)
      expect(denied.status).toBe(401)
      expect(denied.headers.get('etag')).toBeNull()
      expect(await denied.json()).toMatchObject({ errorCode: 'UNAUTHORIZED' })
    }
    expect((await post(`${server.url}${BULK}`, BODY, { 'X-API-Key': 'k-1', 'If-None-Match': etag })).status).toBe(304)
  })

  it('is still refused as text/plain (415), and still validated when its bytes differ by a space', async () => {
    const server = await startServer()
    expect((await post(`${server.url}${BULK}`, BODY)).status).toBe(200)
    const plain = await fetch(`${server.url}${BULK}`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: BODY })
    expect(plain.status).toBe(415)
    // A cached answer for one body says nothing about another: an empty targetingKey is 400.
    expect((await post(`${server.url}${BULK}`, JSON.stringify({ context: { targetingKey: '' } }))).status).toBe(400)
    expect((await post(`${server.url}${BULK}`, JSON.stringify({ context: { targetingKey: '' } }))).status).toBe(400)
    expect((await post(`${server.url}${BULK}`, ` ${BODY}`)).status).toBe(200)
  })

  it('over the OFREP body cap is still 400 on every try, not served from the cache', async () => {
    const server = await startServer({ limits: { maxBodyBytes: 200 } })
    const big = JSON.stringify({ context: { targetingKey: 'u', note: 'x'.repeat(300) } })
    for (let i = 0; i < 2; i++) {
      const response = await post(`${server.url}${BULK}`, big)
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ errorCode: 'INVALID_CONTEXT' })
    }
  })
})

describe('a client that leaves half way through its body', () => {
  it('is forgotten: no answer, no error, nothing counted as served, and the drain does not wait for it', async () => {
    const server = await startServer()
    for (const path of [BULK, '/holdfast/v1/events']) {
      const { socket, closed } = await rawConnection(server.url)
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"context":`)
      await new Promise((resolve) => setTimeout(resolve, 50))
      socket.resetAndDestroy()
      await closed
    }
    // The server answers the next request as usual.
    expect((await post(`${server.url}${BULK}`, BODY)).status).toBe(200)
    const text = await (await fetch(`${server.url}/metrics`)).text()
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="200"\} 1$/m)
    expect(text).not.toMatch(/status="5\d\d"/)
    // Both abandoned requests are settled: closing takes no drain timeout.
    const started = Date.now()
    await server.close()
    expect(Date.now() - started).toBeLessThan(2000)
  })
})

describe('the answer cache key', () => {
  it('is bounded whatever the body (long bodies of one length cannot pile into one Map bucket), and tells bodies apart', () => {
    const body = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ minLength: RAW_KEY_MAX_CHARS - 2, maxLength: RAW_KEY_MAX_CHARS + 2 }), fc.string({ minLength: 20_000, maxLength: 20_010 }))
    fc.assert(
      fc.property(body, body, (a, b) => {
        const [ka, kb] = [answerKey(a), answerKey(b)]
        if (ka === undefined || kb === undefined) {
          // Only a body no JSON document can be: it starts with the hashed form's marker.
          expect([a, b].some((x) => x.length <= RAW_KEY_MAX_CHARS && x.startsWith('#'))).toBe(true)
          return
        }
        expect(ka.length).toBeLessThanOrEqual(RAW_KEY_MAX_CHARS)
        expect(ka === kb).toBe(a === b)
      }),
      { numRuns: 300 },
    )
    // The two forms never meet: a short body that looks like a hashed key is not looked up at all.
    const long = 'x'.repeat(RAW_KEY_MAX_CHARS + 1)
    const hashed = answerKey(long)!
    expect(hashed.startsWith('#')).toBe(true)
    expect(answerKey(hashed)).toBeUndefined()
    // 300 runs over bodies of up to 20,000 characters: 3.8 s under two busy loops, near the 5 s
    // default. The runs are the proof; the time is only the machine's.
  }, 30_000)

  it('answers a hashed-key look-alike by what it is (400), never with the long body\'s cached answer', async () => {
    const server = await startServer()
    const long = JSON.stringify({ context: { targetingKey: 'u', note: 'a'.repeat(RAW_KEY_MAX_CHARS) } })
    expect((await post(`${server.url}${BULK}`, long)).status).toBe(200)
    const response = await post(`${server.url}${BULK}`, answerKey(long)!)
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ errorCode: 'PARSE_ERROR' })
  })

  it('is a hit only under the prefix it was answered under (definitions version and freshness)', () => {
    const cache = createAnswerCache()
    const answer = { body: Buffer.from('{"flags":[]}'), etag: '"x"', errorCodes: [] }
    const long = 'y'.repeat(RAW_KEY_MAX_CHARS + 1)
    for (const body of [BODY, long]) {
      cache.set('v1:file:1:0:', body, answer)
      expect(cache.get('v1:file:1:0:', body)).toBe(answer)
      // The same version served stale, or a newer version: not this answer.
      expect(cache.get('v1:file:1:1:', body)).toBeUndefined()
      expect(cache.get('v2:file:1:0:', body)).toBeUndefined()
    }
  })

  it('caches long bodies too: the second identical one is a hit, a different one of the same length a miss', async () => {
    const server = await startServer()
    const long = (fill: string) => JSON.stringify({ context: { targetingKey: 'u', note: fill.repeat(RAW_KEY_MAX_CHARS) } })
    for (const body of [long('a'), long('a'), long('b')]) expect((await post(`${server.url}${BULK}`, body)).status).toBe(200)
    const text = await (await fetch(`${server.url}/metrics`)).text()
    expect(text).toMatch(/^holdfast_answer_cache_total\{result="miss"\} 2$/m)
    expect(text).toMatch(/^holdfast_answer_cache_total\{result="hit"\} 1$/m)
  })
})

describe('metrics on the hot path', () => {
  it('the request-duration histogram reads exactly as prom-client\'s Histogram fed the same observations', async () => {
    const bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    const observation = fc.tuple(fc.constantFrom('ofrep.bulk', 'events', 'unknown'), fc.oneof(fc.constantFrom(...bounds, 0, 10), fc.double({ min: 0, max: 20, noNaN: true })))
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
        const ours = createServerMetrics()
        const registry = new Registry()
        const reference = new Histogram({ name: 'holdfast_http_request_duration_seconds', help: 'Time from a request to the end of its answer, by route.', labelNames: ['route'], buckets: bounds, registers: [registry] })
        for (const [route, seconds] of observations) {
          ours.countRequest(route, 'POST', 200, seconds)
          reference.observe({ route }, seconds)
        }
        const lines = async (r: Registry) => (await r.getSingleMetricAsString('holdfast_http_request_duration_seconds')).split('\n').sort()
        expect(await lines(ours.registry)).toEqual(await lines(registry))
      }),
      { numRuns: 100 },
    )
  })


  it('counts every request, cache hit and 304 exactly, at every scrape', async () => {
    const server = await startServer()
    const first = await post(`${server.url}${BULK}`, BODY)
    const etag = first.headers.get('etag')!
    for (let i = 0; i < 4; i++) expect((await post(`${server.url}${BULK}`, BODY, { 'If-None-Match': etag })).status).toBe(304)
    let text = await (await fetch(`${server.url}/metrics`)).text()
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="200"\} 1$/m)
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="304"\} 4$/m)
    expect(text).toMatch(/^holdfast_http_request_duration_seconds_count\{route="ofrep\.bulk"\} 5$/m)
    expect(text).toMatch(/^holdfast_answer_cache_total\{result="miss"\} 1$/m)
    expect(text).toMatch(/^holdfast_answer_cache_total\{result="hit"\} 4$/m)
    // Counted since the last scrape and added to it, never twice and never lost.
    for (let i = 0; i < 3; i++) await post(`${server.url}${BULK}`, BODY)
    await fetch(`${server.url}/nowhere`, { method: 'PROPFIND' })
    text = await (await fetch(`${server.url}/metrics`)).text()
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="200"\} 4$/m)
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="304"\} 4$/m)
    expect(text).toMatch(/^holdfast_http_requests_total\{route="unknown",method="other",status="404"\} 1$/m)
    expect(text).toMatch(/^holdfast_http_request_duration_seconds_count\{route="ofrep\.bulk"\} 8$/m)
    expect(text).toMatch(/^holdfast_answer_cache_total\{result="hit"\} 7$/m)
    // The previous scrape is counted too, now that it has been answered.
    expect(text).toMatch(/^holdfast_http_requests_total\{route="metrics",method="GET",status="200"\} 1$/m)
    // The prom-client objects read the same numbers.
    const hits = (await server.metrics.answerCache.get()).values.find((v) => v.labels.result === 'hit')
    expect(hits?.value).toBe(7)
  })

  it('counts an answer that is written after the handler returned once it has finished', async () => {
    let release!: () => void
    let arrived!: () => void
    const held = new Promise<void>((resolve) => (arrived = resolve))
    const late: Middleware = (_req, res, route, next) => {
      if (route.name !== 'ofrep.bulk') return next()
      // Answers later, outside the handler's promise.
      release = () => res.writeHead(503, { 'Retry-After': '1' }).end()
      arrived()
    }
    const server = await startServer({ middleware: [late] })
    const pending = post(`${server.url}${BULK}`, BODY)
    await held
    let text = await (await fetch(`${server.url}/metrics`)).text()
    expect(text).not.toMatch(/route="ofrep\.bulk"/)
    release()
    const response = await pending
    expect(response.status).toBe(503)
    expect(response.headers.get('access-control-allow-origin')).toBe('*')
    text = await (await fetch(`${server.url}/metrics`)).text()
    expect(text).toMatch(/^holdfast_http_requests_total\{route="ofrep\.bulk",method="POST",status="503"\} 1$/m)
  })
})

describe('CORS headers added as the head is written', () => {
  it('are on every answer, whichever way it is written', async () => {
    const server = await startServer({ corsOrigin: 'https://shop.example', apiKey: 'k' })
    const key = { 'X-API-Key': 'k' }
    const ok = await post(`${server.url}${BULK}`, BODY, key)
    const answers = [
      ok,
      await post(`${server.url}${BULK}`, BODY, { ...key, 'If-None-Match': ok.headers.get('etag')! }),
      await post(`${server.url}${BULK}`, BODY),
      await fetch(`${server.url}${BULK}`, { method: 'POST', headers: { ...key, 'Content-Type': 'text/plain' }, body: BODY }),
      await fetch(`${server.url}${BULK}`, { method: 'GET', headers: key }),
      await fetch(`${server.url}/nowhere`, { headers: key }),
      await fetch(`${server.url}/healthz`),
    ]
    expect(answers.map((r) => r.status)).toEqual([200, 304, 401, 415, 405, 404, 200])
    for (const response of answers) {
      expect(response.headers.get('access-control-allow-origin')).toBe('https://shop.example')
      expect(response.headers.get('access-control-expose-headers')).toBe('ETag, Retry-After')
      expect(response.headers.get('vary')).toBe('Origin')
    }
  })

  it('give way to a header the handler sets or passes, without a duplicate', async () => {
    const own: Middleware = (req, res, route, next) => {
      if (req.headers['x-case'] === 'set') {
        res.setHeader('Access-Control-Allow-Origin', 'https://set.example')
        return next()
      }
      if (req.headers['x-case'] === 'pairs') {
        // Node's other array form: [name, value] pairs.
        res.writeHead(200, [['Content-Type', 'text/plain'], ['Access-Control-Allow-Origin', 'https://pairs.example']] as never).end('ok')
        return
      }
      if (req.headers['x-case'] === 'passed') {
        res.writeHead(418, { 'access-control-expose-headers': 'X-Teapot', 'Content-Length': '0' }).end()
        return
      }
      return next()
    }
    const server = await startServer({ middleware: [own] })
    const set = await post(`${server.url}${BULK}`, BODY, { 'X-Case': 'set' })
    expect(set.status).toBe(200)
    expect(set.headers.get('access-control-allow-origin')).toBe('https://set.example')
    expect(set.headers.get('access-control-expose-headers')).toBe('ETag, Retry-After')
    const passed = await post(`${server.url}${BULK}`, BODY, { 'X-Case': 'passed' })
    expect(passed.status).toBe(418)
    expect(passed.headers.get('access-control-expose-headers')).toBe('X-Teapot')
    expect(passed.headers.get('access-control-allow-origin')).toBe('*')
    const pairs = await post(`${server.url}${BULK}`, BODY, { 'X-Case': 'pairs' })
    expect([pairs.status, await pairs.text()]).toEqual([200, 'ok'])
    expect(pairs.headers.get('access-control-allow-origin')).toBe('https://pairs.example')
    expect(pairs.headers.get('access-control-expose-headers')).toBe('ETag, Retry-After')
    const preflight = await fetch(`${server.url}${BULK}`, { method: 'OPTIONS', headers: { 'Access-Control-Request-Headers': 'x-trace' } })
    expect(preflight.headers.get('vary')).toBe('Access-Control-Request-Headers')
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/x-trace$/)
  })

  describe('in a server of your own', () => {
    let handler: FlagHandler | undefined
    let server: Server | undefined
    afterEach(async () => {
      await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
      await handler?.close()
    })

    it('are set as before, on the cached answer and its 304 too', async () => {
      handler = await createFlagHandler({ flags: DEMO_FLAGS, maxEventLoopDelayMs: 0, logger: { info() {}, warn() {}, error() {} } })
      server = createServer(handler)
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${BULK}`
      const first = await post(url, BODY)
      const again = await post(url, BODY, { 'If-None-Match': first.headers.get('etag')! })
      expect([first.status, again.status]).toEqual([200, 304])
      for (const response of [first, again]) expect(response.headers.get('access-control-allow-origin')).toBe('*')
    })

    it('with the exported CorsResponse, are added as the head is written, on every status, once', async () => {
      handler = await createFlagHandler({ flags: DEMO_FLAGS, apiKey: 'k', maxEventLoopDelayMs: 0, logger: { info() {}, warn() {}, error() {} } })
      server = createServer({ ServerResponse: CorsResponse }, handler)
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${BULK}`
      const first = await post(url, BODY, { 'X-API-Key': 'k' })
      const again = await post(url, BODY, { 'X-API-Key': 'k', 'If-None-Match': first.headers.get('etag')! })
      const denied = await post(url, BODY)
      expect([first.status, again.status, denied.status]).toEqual([200, 304, 401])
      for (const response of [first, again, denied]) {
        expect(response.headers.get('access-control-allow-origin')).toBe('*')
        expect(response.headers.get('access-control-expose-headers')).toBe('ETag, Retry-After')
      }
    })
  })
})
