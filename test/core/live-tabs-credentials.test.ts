// Tabs of one origin share the answers they fetch (CONTRACT §10) — but only answers fetched with the
// same credentials. Two tabs on one OFREP URL showing one user may send different headers: a
// staging and a production SDK key, two tenants' tokens against one relay. An answer fetched with
// the staging key holds staging's values: applied in the production tab, it is another
// environment's values shown as `network` (a wrong value). Before, tabs shared by URL and context
// alone, and the production tab took the staging tab's answer.
//
//   server    staging v1, production v1 ──────────── both v2 ──────────────────────
//   tab S     (X-API-Key: staging)      refresh ─► staging-v2, posts it
//   tab P     (X-API-Key: production)                hears it: must keep production-v1
//   tab Q     (X-API-Key: production)                            refresh ─► production-v2, posts it
//   tab P                                                        hears it: adopts production-v2
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, it } from 'vitest'
import type { ClientOptions, FlagClient } from '@holdfast/core'
import { pollUntil, sharingTab } from '../support/streamingOfrep'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/** Answers `banner` = `<key>-v<version>` for the X-API-Key sent; advertises a silent stream. */
async function perKeyServer(): Promise<{ url: string; version: number; asked: string[] }> {
  const state = { url: '', version: 1, asked: [] as string[] }
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/stream')) return void res.writeHead(200, { 'Content-Type': 'text/event-stream' })
    req.resume()
    req.on('end', () => {
      const key = String(req.headers['x-api-key'])
      state.asked.push(key)
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({
          flags: [{ key: 'banner', value: `${key}-v${state.version}`, reason: 'STATIC' }],
          metadata: { holdfast: { source: 'file', fetchedAt: state.version, stale: false } },
          eventStreams: [{ type: 'sse', endpoint: { requestUri: '/stream' } }],
        }),
      )
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  cleanup.push(
    () =>
      new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  )
  return state
}

const tab = (url: string, headers: ClientOptions['headers']) => sharingTab(url, 'tabs-credentials', cleanup, { headers })

const banner = (t: { client: FlagClient }) => t.client.getValue<string>('banner', 'none')

/** Calls of each tab's headers function (by the order the tabs were made). */
const calls: number[] = []
const counted = (make: (key: string) => () => unknown) => (key: string) => {
  const n = calls.push(0) - 1
  const get = make(key)
  return () => (calls[n]++, get())
}

for (const [what, make] of [
  ['headers as an object', (key: string) => ({ 'X-API-Key': key })],
  ['headers as a function', counted((key: string) => () => ({ 'X-API-Key': key }))],
  // An async token getter (Auth0's getAccessTokenSilently, Firebase's getIdToken): before, a tab
  // with one shared with no other tab, and every tab fetched for itself on every change.
  ['headers as an async function', counted((key: string) => async () => ({ 'X-API-Key': key }))],
] as const) {
  it(`${what}: a tab never applies an answer another tab fetched with other credentials; one fetched with its own is still shared`, async () => {
    const server = await perKeyServer()
    calls.splice(0)
    const s = tab(server.url, make('staging') as ClientOptions['headers'])
    const p = tab(server.url, make('production') as ClientOptions['headers'])
    const q = tab(server.url, make('production') as ClientOptions['headers'])
    for (const t of [s, p, q]) await t.client.start()
    // Every tab's live chunk is loaded (on demand, after its first answer) and has shared that answer.
    await pollUntil(() => server.asked.length === 3, 5000, 'the first answers')
    await new Promise((r) => setTimeout(r, 300))
    expect([banner(s), banner(p), banner(q)]).toEqual(['staging-v1', 'production-v1', 'production-v1'])
    p.shown.splice(0)
    const pCalls = calls[1]

    server.version = 2
    const asked = server.asked.length
    await s.client.refresh()
    expect(banner(s)).toBe('staging-v2')
    // Then the production tab Q fetches; P, which showed production-v1, adopts Q's answer. The
    // staging answer was posted first: P has heard it by then.
    await q.client.refresh()
    await pollUntil(() => banner(p) === 'production-v2', 5000, "P to adopt Q's answer")
    // Before: P showed staging-v2 in between (['staging-v2', 'production-v2']).
    expect(p.shown).toEqual(['production-v2'])
    // P made no request of its own: the answer of its own key was shared.
    expect(server.asked.slice(asked)).toEqual(['staging', 'production'])
    // Nor was its headers function called: it is asked per request, not per message another tab
    // posts (before: once for each answer, notice and stream message of every other tab).
    if (calls.length > 0) expect(calls[1]).toBe(pCalls)
  })
}
