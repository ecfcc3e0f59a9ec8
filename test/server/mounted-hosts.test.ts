// The handler mounted in hosts that do what real apps do before it (docs/server.md "Mounting"). One that
// has read the request body already: Express after `app.use(express.json())`, a Next.js pages API
// route (its body parser is on by default), Fastify (its content-type parser runs before any
// route); the body's 'end' has been and gone, and waiting for it, every flag and events request
// hung until the host's own timeout. One whose middleware wraps `res.writeHead` (see below).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gzipSync, gunzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagHandler, type FlagHandler } from '@holdfast/server'
import { DEMO_FLAGS, hostOnLoopback, post, recordingLogger } from './helpers'

const cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

type Keep = (raw: Buffer) => unknown

/** A host that reads the whole body first, keeps `keep(raw)` as `req.body` (unless undefined), then calls the handler. */
async function parsingHost(keep: Keep): Promise<{ url: string; handler: FlagHandler }> {
  const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger: recordingLogger(), maxEventLoopDelayMs: 0 })
  cleanup.push(() => handler.close())
  const url = await hostOnLoopback((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = keep(Buffer.concat(chunks))
      if (body !== undefined) (req as IncomingMessage & { body?: unknown }).body = body
      handler(req, res, () => res.writeHead(404).end())
    })
  })
  return { url, handler }
}

const json: Keep = (raw) => (raw.length === 0 ? {} : JSON.parse(raw.toString('utf8')))
// Answered within 3 s or reported as the hang it was.
const send = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  Promise.race([post(url, body, headers), new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`no answer from ${url} within 3 s`)), 3000))])

describe('a handler behind a host that parsed the body (express.json(), a Next.js pages API route, Fastify)', () => {
  it.each([
    ['parsed JSON (express.json(), Next.js)', json],
    ['raw bytes (express.raw())', (raw: Buffer) => raw],
    ['text (express.text())', (raw: Buffer) => raw.toString('utf8')],
  ] as Array<[string, Keep]>)('%s: flags are evaluated for the posted context, revalidated, and events stored', async (_, keep) => {
    const { url, handler } = await parsingHost(keep)
    const bulk = await send(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u', plan: 'pro' } })
    expect(bulk.status).toBe(200)
    const flags = (await bulk.json()) as { flags: Array<{ key: string; value?: unknown }> }
    expect(flags.flags.find((f) => f.key === 'beta')?.value).toBe(true)
    const again = await send(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u', plan: 'pro' } }, { 'If-None-Match': bulk.headers.get('etag')! })
    expect(again.status).toBe(304)
    // Another context is evaluated as itself, not answered from the first one's.
    const other = await send(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u', plan: 'free' } }, { 'If-None-Match': bulk.headers.get('etag')! })
    expect(other.status).toBe(200)
    expect(((await other.json()) as typeof flags).flags.find((f) => f.key === 'beta')?.value).toBe(false)
    const one = await send(`${url}/ofrep/v1/evaluate/flags/beta`, { context: { targetingKey: 'u', plan: 'pro' } })
    expect(await one.json()).toMatchObject({ key: 'beta', value: true })
    const events = await send(`${url}/holdfast/v1/events`, { events: [{ id: 'e-1', type: 'custom', name: 'checkout', time: 1 }] })
    expect(events.status).toBe(202)
    expect(await events.json()).toEqual({ accepted: 1, duplicates: 0 })
    expect(handler.events().map((e) => e.id)).toEqual(['e-1'])
  })

  it('a parsed context is held to the same rules: a __proto__ key is refused, a body over 1 MiB gets 413', async () => {
    const { url } = await parsingHost(json)
    const proto = await send(`${url}/ofrep/v1/evaluate/flags`, '{"context":{"targetingKey":"u","__proto__":{"plan":"pro"}}}')
    expect(proto.status).toBe(400)
    expect(await proto.json()).toMatchObject({ errorCode: 'INVALID_CONTEXT' })
    const huge = await send(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u', blob: 'x'.repeat(1_100_000) } })
    expect(huge.status).toBe(413)
  })

  it("a host's body that is no posted JSON (a cycle, a BigInt, a throwing toJSON, 100,000 levels deep) is a 500 at once, nothing thrown into the host; a deep but posted one is a 400", async () => {
    const cyclic: Record<string, unknown> = { context: { targetingKey: 'u' } }
    cyclic.self = cyclic
    let deep: unknown = { targetingKey: 'u' }
    for (let i = 0; i < 100_000; i++) deep = { deep }
    const bodies: unknown[] = [cyclic, { context: { targetingKey: 'u', n: 1n } }, { toJSON: () => { throw new Error('host object') } }, { context: deep }]
    let next = 0
    const { url } = await parsingHost(() => bodies[next++])
    for (let i = 0; i < bodies.length; i++) {
      const answer = await send(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })
      expect(answer.status, String(i)).toBe(500)
    }
    let nested: unknown = 'x'
    for (let i = 0; i < 100; i++) nested = { nested }
    const posted = await parsingHost(json)
    const refused = await send(`${posted.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u', nested } })
    expect(refused.status).toBe(400)
    // The host lives on: the next ordinary request is answered.
    expect((await send(`${posted.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })).status).toBe(200)
  })

  // body-parser (under express.json(), .raw(), .text()) inflates a gzip body and leaves the
  // Content-Encoding header as the client sent it. Before, every such request got 415 "send the
  // body uncompressed": a client that gzips its events could not post to a relay mounted in Express.
  it.each([
    ['parsed JSON (express.json())', (raw: Buffer) => JSON.parse(gunzipSync(raw).toString('utf8'))],
    ['raw bytes (express.raw())', (raw: Buffer) => gunzipSync(raw)],
    ['text (express.text())', (raw: Buffer) => gunzipSync(raw).toString('utf8')],
  ] as Array<[string, Keep]>)('a gzip body the host inflated, %s: evaluated and stored, not 415', async (_, keep) => {
    const { url, handler } = await parsingHost(keep)
    const gzipped = (body: unknown) =>
      fetch(url + (body && typeof body === 'object' && 'events' in body ? '/holdfast/v1/events' : '/ofrep/v1/evaluate/flags'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
        body: gzipSync(JSON.stringify(body)),
      })
    const bulk = await gzipped({ context: { targetingKey: 'u', plan: 'pro' } })
    expect(bulk.status).toBe(200)
    expect(((await bulk.json()) as { flags: Array<{ key: string; value?: unknown }> }).flags.find((f) => f.key === 'beta')?.value).toBe(true)
    const events = await gzipped({ events: [{ id: 'e-1', type: 'custom', name: 'checkout', time: 1 }] })
    expect(events.status).toBe(202)
    expect(handler.events().map((e) => e.id)).toEqual(['e-1'])
  })

  it.each([
    ['bytes', (raw: Buffer) => raw],
    // A raw-body middleware that keeps what came as a 'binary' (latin1) string: before, any string
    // counted as decoded, so the gzip bytes were parsed as JSON, a 400 the client drops as bad input.
    ['a latin1 string', (raw: Buffer) => raw.toString('latin1')],
  ] as Array<[string, Keep]>)('a host that kept the gzip bytes as they came (nothing inflated them) as %s: still 415, not a 400 that drops the events', async (_, keep) => {
    const { url } = await parsingHost(keep)
    const answer = await fetch(`${url}/holdfast/v1/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      body: gzipSync(JSON.stringify({ events: [{ id: 'e-1', type: 'custom', name: 'checkout', time: 1 }] })),
    })
    expect(answer.status).toBe(415)
  })

  it('a host that read the body and kept nothing gets a 500 naming the problem at once, not a request that hangs', async () => {
    const { url } = await parsingHost(() => undefined)
    for (const path of ['/ofrep/v1/evaluate/flags', '/ofrep/v1/evaluate/flags/beta', '/holdfast/v1/events']) {
      const answer = await send(`${url}${path}`, { context: { targetingKey: 'u' } })
      expect(answer.status).toBe(500)
      expect(((await answer.json()) as { errorDetails: string }).errorDetails).toMatch(/read before .*req\.body/)
    }
  })
})

// A host's middleware that wraps `res.writeHead` to act just before the head goes out (logging,
// compression, sessions: on-headers under morgan, compression and express-session) and reads an
// array of headers as [name, value] pairs, as on-headers did before 1.1.0 (still pinned by many
// lockfiles). Node's flat [name, value, name, value] form then became headers named by single
// characters, and a `"` (an ETag's first character) as a name threw: every cached answer and
// every 304 was a 500.
function wrapWriteHeadAsPairs(res: ServerResponse): void {
  const original = res.writeHead.bind(res)
  res.writeHead = ((status: number, ...rest: unknown[]) => {
    const headers = rest.find((arg) => typeof arg === 'object' && arg !== null)
    if (Array.isArray(headers)) for (const pair of headers) res.setHeader((pair as string[])[0], (pair as string[])[1])
    else if (headers) for (const [name, value] of Object.entries(headers)) res.setHeader(name, value as string)
    return original(status)
  }) as ServerResponse['writeHead']
}

describe('a handler behind a host whose middleware wraps writeHead (morgan, compression, express-session)', () => {
  it('answers 200 with its ETag and Content-Type, and 304 to a revalidation, with no stray headers', async () => {
    const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger: recordingLogger(), maxEventLoopDelayMs: 0 })
    cleanup.push(() => handler.close())
    const url = await hostOnLoopback((req, res) => {
      wrapWriteHeadAsPairs(res)
      handler(req, res)
    })
    for (let i = 0; i < 2; i++) {
      // The second is the cached answer.
      const answer = await send(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })
      expect(answer.status).toBe(200)
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/)
      expect(answer.headers.get('etag')).toMatch(/^"/)
      expect([...answer.headers.keys()].filter((name) => name.length === 1)).toEqual([])
      const again = await send(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } }, { 'If-None-Match': answer.headers.get('etag')! })
      expect(again.status).toBe(304)
    }
  })
})
