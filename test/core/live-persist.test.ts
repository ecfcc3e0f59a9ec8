// @vitest-environment jsdom
// What live updates remember in localStorage for the next page (a 304 has no body to say where the
// stream is), against servers on 127.0.0.1. OFREP 0.3.0: an advertised stream `url` may carry a
// vendor's token, and "implementations must not log or persist the full URL including its query string".
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@holdfast/core'
import { createTestLogger, uniqueStorageName } from '../support/clock'

const cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
  localStorage.clear()
})

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** An OFREP server advertising `streams(itsUrl)`, with an SSE route at /stream. */
async function ofrepServer(streams: (self: string) => unknown[]) {
  const open: ServerResponse[] = []
  let url = ''
  const server: Server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Access-Control-Allow-Headers', '*')
    if (req.method === 'OPTIONS') return void res.writeHead(204).end()
    if (req.url?.startsWith('/ofrep/v1/evaluate/flags')) {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json', ETag: '"v1"' })
        res.end(JSON.stringify({ flags: [{ key: 'kill-switch', value: false, reason: 'STATIC' }], eventStreams: streams(url) }))
      })
      return
    }
    if (req.url?.startsWith('/stream')) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write('retry: 100\n\n')
      open.push(res)
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  cleanup.push(() => new Promise<void>((done) => {
    for (const s of open) s.destroy()
    server.closeAllConnections()
    server.close(() => done())
  }))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, streams: () => open.length }
}

async function run(url: string, connected: () => boolean) {
  const c = createClient({ url, context: { targetingKey: 'u' }, storage: 'memory', storageName: uniqueStorageName('live-persist'), logger: createTestLogger(), refreshIntervalMs: 0, liveUpdates: { shareTabs: false } })
  cleanup.push(() => c.close())
  await c.start()
  await waitFor(connected, 5000, 'the stream')
}

const remembered = () => Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`).join('\n')

describe('the advertised stream, remembered for the next page', () => {
  it('a stream URL with a token in its query is not written to localStorage', async () => {
    const vendor = await ofrepServer(() => [])
    const home = await ofrepServer(() => [{ type: 'sse', url: `${vendor.url}/stream?channels=env_abc&token=SECRET-123` }])
    await run(home.url, () => vendor.streams() === 1)
    expect(remembered()).not.toContain('SECRET-123')
  })

  it('nor is one on the OFREP origin with a token in its query (endpoint.requestUri)', async () => {
    const home = await ofrepServer(() => [{ type: 'sse', endpoint: { requestUri: '/stream?token=SECRET-456' } }])
    await run(home.url, () => home.streams() === 1)
    expect(remembered()).not.toContain('SECRET-456')
  })

  it('the reference server\'s path is remembered, so a page answered 304 still finds it (held)', async () => {
    const home = await ofrepServer(() => [{ type: 'sse', endpoint: { requestUri: '/stream' }, inactivityDelaySec: 30 }])
    await run(home.url, () => home.streams() === 1)
    expect(localStorage.getItem(`holdfast-live:${home.url}`)).toContain('/stream')
  })
})
