// CORS, API keys, health and routing: what a browser or an operator meets before any flag logic.
import { describe, expect, it } from 'vitest'
import { evaluate, post, startServer } from './helpers'

describe('CORS', () => {
  it('answers a preflight with 204, the methods, the requested headers and a max age', async () => {
    const server = await startServer({ apiKey: 'secret' })
    const response = await fetch(`${server.url}/ofrep/v1/evaluate/flags`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://shop.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type, x-api-key, if-none-match, x-trace-id',
      },
    })
    // No API key needed: browsers never send credentials on a preflight.
    expect(response.status).toBe(204)
    expect(response.headers.get('access-control-allow-origin')).toBe('*')
    expect(response.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS')
    const allowed = response.headers.get('access-control-allow-headers')!.toLowerCase().split(/,\s*/)
    expect(allowed).toEqual(expect.arrayContaining(['content-type', 'authorization', 'x-api-key', 'if-none-match', 'x-trace-id']))
    expect(Number(response.headers.get('access-control-max-age'))).toBeGreaterThan(0)
  })

  it('exposes ETag and Retry-After on responses, errors included', async () => {
    const server = await startServer({ apiKey: 'secret' })
    const ok = await evaluate(server, { targetingKey: 'u' }, { Origin: 'https://shop.example', 'X-API-Key': 'secret' })
    const denied = await evaluate(server, { targetingKey: 'u' }, { Origin: 'https://shop.example' })
    for (const response of [ok, denied]) {
      expect(response.headers.get('access-control-allow-origin')).toBe('*')
      expect(response.headers.get('access-control-expose-headers')).toBe('ETag, Retry-After')
    }
    expect(denied.status).toBe(401)
  })

  it('names only the configured origin, with Vary: Origin', async () => {
    const server = await startServer({ corsOrigin: 'https://shop.example' })
    const response = await evaluate(server, { targetingKey: 'u' }, { Origin: 'https://shop.example' })
    expect(response.headers.get('access-control-allow-origin')).toBe('https://shop.example')
    expect(response.headers.get('vary')).toMatch(/Origin/)
    const preflight = await fetch(`${server.url}/holdfast/v1/events`, { method: 'OPTIONS', headers: { Origin: 'https://shop.example' } })
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://shop.example')
  })

  it('refuses to start with a corsOrigin no browser origin can equal (a trailing slash, a path, upper case), naming the origin meant', async () => {
    // A browser compares Access-Control-Allow-Origin with its Origin byte for byte, and an Origin
    // is scheme://host[:port] in lower case: "https://shop.example/" let every cross-origin
    // request fail its CORS check (a NETWORK error in the client), while the server said nothing.
    for (const [given, meant] of [['https://shop.example/', 'https://shop.example'], ['https://shop.example/app', 'https://shop.example'], ['HTTPS://Shop.Example', 'https://shop.example']]) {
      await expect(startServer({ corsOrigin: given }), given).rejects.toThrow(new RegExp(`corsOrigin .*"${meant.replace(/\./g, '\\.')}"`))
    }
    await expect(startServer({ corsOrigin: 'shop.example' })).rejects.toThrow(/corsOrigin must be an origin/)
    // A list, as other servers take one: it says one origin is taken, and suggests no half of the
    // list (before: 'did you mean "https://a.example,https"?').
    for (const list of ['https://a.example,https://b.example', 'https://a.example https://b.example', 'https://a.example, https://b.example']) {
      const refused = await startServer({ corsOrigin: list }).then(() => 'started', (error: Error) => error.message)
      expect(refused, list).toMatch(/corsOrigin takes one origin, not a list/)
      expect(refused, list).not.toMatch(/did you mean/)
    }
    for (const fine of ['https://shop.example', 'http://127.0.0.1:5173', '*']) {
      const server = await startServer({ corsOrigin: fine })
      const response = await evaluate(server, { targetingKey: 'u' }, { Origin: 'https://shop.example' })
      expect(response.headers.get('access-control-allow-origin')).toBe(fine)
    }
  })
})

describe('API key', () => {
  it('accepts Authorization: Bearer KEY and X-API-Key: KEY', async () => {
    const server = await startServer({ apiKey: 'k-123' })
    expect((await evaluate(server, { targetingKey: 'u' }, { Authorization: 'Bearer k-123' })).status).toBe(200)
    expect((await evaluate(server, { targetingKey: 'u' }, { 'X-API-Key': 'k-123' })).status).toBe(200)
    const events = await post(`${server.url}/holdfast/v1/events`, { events: [] }, { authorization: 'bearer k-123' })
    expect(events.status).toBe(202)
  })

  it('answers 401 with a JSON body to a missing or wrong key, on every protected route', async () => {
    const server = await startServer({ apiKey: 'k-123' })
    const attempts = [
      await evaluate(server, { targetingKey: 'u' }),
      await evaluate(server, { targetingKey: 'u' }, { Authorization: 'Bearer k-124' }),
      await evaluate(server, { targetingKey: 'u' }, { 'X-API-Key': 'k-12' }),
      await evaluate(server, { targetingKey: 'u' }, { Authorization: 'k-123' }),
      await post(`${server.url}/ofrep/v1/evaluate/flags/beta`, { context: { targetingKey: 'u' } }),
      await post(`${server.url}/holdfast/v1/events`, { events: [] }),
    ]
    for (const response of attempts) {
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ errorCode: 'UNAUTHORIZED' })
    }
    // The flags were not evaluated for a caller without the key: the body says nothing about them.
    expect(JSON.stringify(await (await evaluate(server, { targetingKey: 'u' })).json())).not.toContain('kill-switch')
  })

  it('keeps /healthz open', async () => {
    const server = await startServer({ apiKey: 'k-123' })
    const response = await fetch(`${server.url}/healthz`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok' })
  })
})

describe('routing', () => {
  it('binds 127.0.0.1 by default and reports its URL and port', async () => {
    const server = await startServer()
    expect(server.host).toBe('127.0.0.1')
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
    expect(server.port).toBeGreaterThan(0)
  })

  it('answers 404 to unknown paths and 405 to wrong methods', async () => {
    const server = await startServer()
    expect((await fetch(`${server.url}/nope`)).status).toBe(404)
    expect((await fetch(`${server.url}/constructor`)).status).toBe(404)
    const wrongMethod = await fetch(`${server.url}/ofrep/v1/evaluate/flags`)
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.get('allow')).toContain('POST')
  })

  it('tolerates a trailing slash and a query string on the bulk endpoint', async () => {
    const server = await startServer()
    const response = await post(`${server.url}/ofrep/v1/evaluate/flags/?flagConfigEtag=abc`, { context: { targetingKey: 'u' } })
    expect(response.status).toBe(200)
    expect(((await response.json()) as { flags: unknown[] }).flags.length).toBeGreaterThan(0)
  })

  it('stops answering after close(), and close() is idempotent', async () => {
    const server = await startServer()
    await server.close()
    await server.close()
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow()
  })
})
