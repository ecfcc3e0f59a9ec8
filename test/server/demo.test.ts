// Demo controls: the outages Holdfast clients must ride out, on demand.
import { describe, expect, it } from 'vitest'
import type { FlagServer, OutageMode } from '@holdfast/server'
import { evaluate, post, startServer, timed } from './helpers'

const setOutage = (server: FlagServer, change: unknown, headers: Record<string, string> = {}) =>
  post(`${server.url}/demo/outage`, change, headers)

describe('demo controls', () => {
  it('are 404 unless enabled', async () => {
    const server = await startServer()
    expect((await fetch(`${server.url}/demo/outage`)).status).toBe(404)
    expect((await setOutage(server, { mode: '503' })).status).toBe(404)
    expect((await post(`${server.url}/demo/reset-events`, {})).status).toBe(404)
    expect(server.outage).toBeUndefined()
  })

  it('read and set the outage mode', async () => {
    const server = await startServer({ demoControls: true })
    expect(await (await fetch(`${server.url}/demo/outage`)).json()).toEqual({ mode: 'none', events: false })
    const set = await setOutage(server, { mode: 'html', events: true, retryAfter: 3 })
    expect(await set.json()).toEqual({ mode: 'html', events: true, retryAfter: 3 })
    expect(await (await fetch(`${server.url}/demo/outage`)).json()).toEqual({ mode: 'html', events: true, retryAfter: 3 })
    expect(await (await setOutage(server, { retryAfter: null })).json()).toEqual({ mode: 'html', events: true })
    for (const bad of [{ mode: 'down' }, { events: 'yes' }, { retryAfter: -1 }, [1]]) {
      const response = await setOutage(server, bad)
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ errorCode: 'INVALID_OUTAGE' })
    }
    expect(server.outage!.get().mode).toBe('html')
  })

  it('503: answers 503, with Retry-After when asked', async () => {
    const server = await startServer({ demoControls: true })
    await setOutage(server, { mode: '503', retryAfter: 7 })
    const response = await evaluate(server, { targetingKey: 'u' })
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('7')
    // The browser must be able to read both: CORS still applies.
    expect(response.headers.get('access-control-allow-origin')).toBe('*')
    expect(response.headers.get('access-control-expose-headers')).toContain('Retry-After')
  })

  it('empty and empty-flags: 200 JSON with no flags in it', async () => {
    const server = await startServer({ demoControls: true })
    await setOutage(server, { mode: 'empty' })
    const empty = await evaluate(server, { targetingKey: 'u' })
    expect(empty.status).toBe(200)
    expect(empty.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await empty.json()).toEqual({})
    await setOutage(server, { mode: 'empty-flags' })
    const emptyFlags = await evaluate(server, { targetingKey: 'u' })
    expect(emptyFlags.status).toBe(200)
    expect(await emptyFlags.json()).toEqual({ flags: [] })
  })

  it('html: 200 text/html, like a captive portal', async () => {
    const server = await startServer({ demoControls: true })
    await setOutage(server, { mode: 'html' })
    const response = await evaluate(server, { targetingKey: 'u' })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await response.text()).toMatch(/^<!doctype html>/i)
  })

  it('hang: holds requests until the mode changes, then answers in the new mode', async () => {
    const server = await startServer({ demoControls: true })
    await setOutage(server, { mode: 'hang' })
    let settled = false
    const held = evaluate(server, { targetingKey: 'u' }).finally(() => (settled = true))
    await new Promise((r) => setTimeout(r, 300))
    expect(settled).toBe(false)
    await setOutage(server, { mode: 'none' })
    const response = await held
    expect(response.status).toBe(200)
    expect(((await response.json()) as { flags: unknown[] }).flags.length).toBeGreaterThan(0)
  })

  it('hang: close() ends held requests promptly', async () => {
    const server = await startServer({ demoControls: true })
    server.outage!.set({ mode: 'hang' })
    const held = evaluate(server, { targetingKey: 'u' }).then(
      () => 'answered',
      () => 'connection closed',
    )
    await new Promise((r) => setTimeout(r, 100))
    const { ms } = await timed(async () => {
      await server.close()
      expect(await held).toBe('connection closed')
    })
    expect(ms).toBeLessThan(1000)
  })

  it('none restores normal answers; every mode leaves the events endpoint alone unless events is set', async () => {
    const server = await startServer({ demoControls: true })
    const batch = { events: [{ id: 'e1', type: 'custom', name: 'x', time: 1 }] }
    for (const mode of ['503', 'empty', 'empty-flags', 'html'] satisfies OutageMode[]) {
      await setOutage(server, { mode })
      expect((await post(`${server.url}/holdfast/v1/events`, batch)).status).toBe(202)
    }
    await setOutage(server, { mode: 'none', events: true })
    expect((await evaluate(server, { targetingKey: 'u' })).status).toBe(200)
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [{ id: 'e2', type: 'custom', name: 'x', time: 1 }] })).status).toBe(503)
    expect(server.events().map((e) => e.id)).toEqual(['e1'])
  })

  it('reset-events forgets received events', async () => {
    const server = await startServer({ demoControls: true })
    const batch = { events: [{ id: 'e1', type: 'custom', name: 'x', time: 1 }] }
    await post(`${server.url}/holdfast/v1/events`, batch)
    expect((await post(`${server.url}/demo/reset-events`, {})).status).toBe(204)
    expect(server.events()).toEqual([])
    expect(await (await post(`${server.url}/holdfast/v1/events`, batch)).json()).toEqual({ accepted: 1, duplicates: 0 })
  })

  it('need the API key when one is set, and carry CORS headers', async () => {
    const server = await startServer({ demoControls: true, apiKey: 'k' })
    expect((await setOutage(server, { mode: '503' })).status).toBe(401)
    const ok = await setOutage(server, { mode: '503' }, { 'X-API-Key': 'k' })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('access-control-allow-origin')).toBe('*')
    const preflight = await fetch(`${server.url}/demo/outage`, { method: 'OPTIONS' })
    expect(preflight.status).toBe(204)
  })
})
