// The event stream of a handler mounted under a path (docs/server.md: `app.use('/flags', flags)`, clients
// use '<origin>/flags'; `toFetchHandler(flags, { basePath: '/api/flags' })`). OFREP joins the
// advertised `requestUri` to the origin, so it must name the mount, or every tab's stream goes to
// a path of the app that is not the stream (a 404), and live updates never start.
import type { IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@holdfast/core'
import { createFlagHandler, toFetchHandler, type FlagHandler } from '@holdfast/server'
import { DEMO_FLAGS, hostOnLoopback, recordingLogger, waitFor } from './helpers'

const cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

async function handler(options: Parameters<typeof createFlagHandler>[0] = { flags: DEMO_FLAGS }): Promise<FlagHandler> {
  const h = await createFlagHandler({ logger: recordingLogger(), maxEventLoopDelayMs: 0, ...options })
  cleanup.push(() => h.close())
  return h
}

/** What Express does for `app.use(mount, handler)`: the mount cut from `req.url`, kept in `req.baseUrl`. Anything else: 404. */
function expressLike(mount: string, h: FlagHandler): Promise<string> {
  return hostOnLoopback((req, res) => {
    const url = req.url ?? '/'
    if (url !== mount && !url.startsWith(`${mount}/`) && !url.startsWith(`${mount}?`)) return void res.writeHead(404, { 'Content-Type': 'text/html' }).end('<pre>Cannot GET</pre>')
    Object.assign(req as IncomingMessage & { baseUrl?: string; originalUrl?: string }, { originalUrl: url, baseUrl: mount, url: url.slice(mount.length) || '/' })
    h(req, res, () => res.writeHead(404).end())
  })
}

const bulk = (url: string) =>
  fetch(`${url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey: 'u' } }) }).then(
    (r) => r.json() as Promise<{ eventStreams: Array<{ endpoint: { requestUri: string } }> }>,
  )

describe('a handler mounted under a path', () => {
  it('advertises its stream under the mount (Express), and a client stream reaches it', async () => {
    const h = await handler()
    const origin = await expressLike('/flags', h)
    expect((await bulk(`${origin}/flags`)).eventStreams[0].endpoint.requestUri).toBe('/flags/holdfast/v1/stream')
    const client = createClient({ url: `${origin}/flags`, context: { targetingKey: 'u' }, storage: 'memory', liveUpdates: { shareTabs: false }, refreshIntervalMs: 0 })
    cleanup.push(() => client.close())
    await client.start()
    // Before: the stream went to /holdfast/v1/stream, the app's 404, again and again.
    await waitFor(() => h.stream!.connections() === 1, 5000)
  })

  it('advertises its stream under toFetchHandler\'s basePath', async () => {
    const h = await handler()
    const handle = toFetchHandler(h, { basePath: '/api/flags' })
    const answer = await handle(new Request('http://app.example/api/flags/ofrep/v1/evaluate/flags', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u"}}' }))
    const body = (await answer.json()) as { eventStreams: Array<{ endpoint: { requestUri: string } }> }
    expect(body.eventStreams[0].endpoint.requestUri).toBe('/api/flags/holdfast/v1/stream')
  })

  it('keeps a configured requestUri, and the plain path when not mounted', async () => {
    const h = await handler({ flags: DEMO_FLAGS, liveUpdates: { requestUri: '/edge/stream' } })
    const origin = await expressLike('/flags', h)
    expect((await bulk(`${origin}/flags`)).eventStreams[0].endpoint.requestUri).toBe('/edge/stream')
    const plain = await handler()
    const handle = toFetchHandler(plain)
    const answer = await handle(new Request('http://app.example/ofrep/v1/evaluate/flags', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u"}}' }))
    expect(((await answer.json()) as { eventStreams: Array<{ endpoint: { requestUri: string } }> }).eventStreams[0].endpoint.requestUri).toBe('/holdfast/v1/stream')
  })
})
