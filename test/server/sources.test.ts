// The FlagSource seam: any source (an HTTP URL, an upstream, a data dir) plugs into the same
// server. These fakes stand in for the relay's sources and pin what the server does with them.
import { describe, expect, it } from 'vitest'
import {
  createListeners,
  parseFlagDefinitions,
  type FlagDefinitionsVersion,
  type FlagSource,
  type FlagSourceEvent,
  type FlagSourceStatus,
  type ForwardedRequest,
} from '@holdfast/server'
import { DEMO_FLAGS, evaluate, flagsByKey, post, startServer } from './helpers'

// A definitions source that is not ready until the test hands it a document.
function manualSource() {
  const listeners = createListeners<FlagSourceEvent>()
  let current: FlagDefinitionsVersion | undefined
  let health: FlagSourceStatus = { ready: false, state: 'failing', lastError: 'upstream down', refused: 0 }
  const source: FlagSource = {
    origin: 'url',
    open: async () => {},
    current: () => current,
    subscribe: listeners.add,
    refresh: async () => current !== undefined,
    status: () => health,
    close: async () => {},
  }
  const deliver = (definitions: object) => {
    const parsed = parseFlagDefinitions(JSON.stringify(definitions))
    if (!parsed.ok) throw new Error(parsed.error)
    const previous = current
    current = { version: parsed.version, definitions: parsed.definitions, evaluator: parsed.core, flagCount: parsed.count, origin: 'url', fetchedAt: 1_000 }
    health = { ready: true, state: 'ok', lastSuccessAt: 1_000, refused: 0 }
    listeners.emit({ type: 'update', version: current, previous, changed: [] })
  }
  return { source, deliver }
}

describe('a custom definitions source', () => {
  it('with nothing to serve: OFREP 503 + Retry-After (never an empty 200, never 401), not ready, alive', async () => {
    const { source } = manualSource()
    const server = await startServer({ source, flags: undefined, apiKey: 'k' })
    const answer = await evaluate(server, { targetingKey: 'u' }, { 'X-API-Key': 'k' })
    expect(answer.status).toBe(503)
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await post(`${server.url}/ofrep/v1/evaluate/flags/kill-switch`, { context: { targetingKey: 'u' } }, { 'X-API-Key': 'k' })).status).toBe(503)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it('serves what it delivers, and every new version replaces the cached answers', async () => {
    const { source, deliver } = manualSource()
    const server = await startServer({ source, flags: undefined })
    deliver(DEMO_FLAGS)
    const first = await evaluate(server, { targetingKey: 'u' })
    expect(first.status).toBe(200)
    expect((await flagsByKey(first))['kill-switch'].value).toBe(false)
    expect(await (await fetch(`${server.url}/readyz`)).json()).toMatchObject({ status: 'ready', source: 'upstream', flags: 7 })
    deliver({ flags: { ...DEMO_FLAGS.flags, 'kill-switch': { ...DEMO_FLAGS.flags['kill-switch'], defaultVariant: 'on' } } })
    expect((await flagsByKey(await evaluate(server, { targetingKey: 'u' })))['kill-switch'].value).toBe(true)
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics.match(/^holdfast_flag_definitions_info\{.*origin="upstream"\} 1$/gm)).toHaveLength(1)
    expect(() => server.setFlags(DEMO_FLAGS)).toThrow(/needs the `flags` option/)
  })
})

describe('a per-context source (proxy mode)', () => {
  it('gets each bulk request with the validated context and the request headers, and its answer is sent as is', async () => {
    const seen: ForwardedRequest[] = []
    const source: FlagSource = {
      origin: 'upstream',
      open: async () => {},
      current: () => undefined,
      subscribe: () => () => {},
      refresh: async () => true,
      status: () => ({ ready: true, state: 'ok', refused: 0 }),
      close: async () => {},
      async evaluate(request) {
        seen.push(request)
        return { status: 200, body: { flags: [{ key: 'from-upstream', value: request.context.targetingKey }] }, headers: { ETag: '"up-1"', 'Content-Length': '1', 'X-Upstream': 'kept' } }
      },
    }
    const server = await startServer({ source, flags: undefined })
    const answer = await evaluate(server, { targetingKey: 'ann', plan: 'pro' }, { Authorization: 'Bearer user-token' })
    expect(answer.status).toBe(200)
    expect(answer.headers.get('etag')).toBe('"up-1"')
    // Its own headers go along, except a length or type for a body that is not the one sent.
    expect(answer.headers.get('x-upstream')).toBe('kept')
    expect(answer.headers.get('access-control-allow-origin')).toBe('*')
    expect(await answer.json()).toEqual({ flags: [{ key: 'from-upstream', value: 'ann' }] })
    expect(seen[0].context).toEqual({ targetingKey: 'ann', plan: 'pro' })
    expect(seen[0].headers.authorization).toBe('Bearer user-token')
    // The source's own tag is the one compared: a match is a 304 carrying it.
    const confirmed = await evaluate(server, { targetingKey: 'ann', plan: 'pro' }, { 'If-None-Match': '"up-1"' })
    expect([confirmed.status, confirmed.headers.get('etag')]).toEqual([304, '"up-1"'])
    // The server's own checks still come first: a bad context never reaches the upstream.
    expect((await post(`${server.url}/ofrep/v1/evaluate/flags`, '{"context":{"targetingKey":"u","__proto__":{}}}')).status).toBe(400)
    expect((await evaluate(server, {})).status).toBe(400)
    expect(seen).toHaveLength(2)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
  })
})
