// Two tabs of one origin showing one user share their answers (CONTRACT §10). An answer another tab
// posts may be older than what this tab holds: that tab's request started before this tab's newer
// one finished (a slow server, a loaded machine), or its message came late. It must never replace
// the newer values: before, the follower showed the old value until the next change notice.
//
//   server    v1 ─────────────── v2 ───────────────────────── v3
//   tab A     refresh ─ (held: its answer is v1, fetchedAt 1) ───────────► applies v1, posts it
//   tab B                          refresh ─► v2 (fetchedAt 2)   hears A's v1: must keep v2
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, it } from 'vitest'
import type { FlagClient } from '@holdfast/core'
import { pollUntil, sharingTab } from '../support/streamingOfrep'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

interface Scripted {
  url: string
  /** The version served now: its value is `v<n>`, its metadata.holdfast.fetchedAt is n (epoch ms: tiny, but ordered). */
  version: number
  /** Holds the answers to tab A's requests until `release` (they are built when the request comes). */
  holdA: boolean
  release(): void
  /** Answers held now. */
  held(): number
}

async function scriptedServer(): Promise<Scripted> {
  const held: Array<() => void> = []
  const streams: ServerResponse[] = []
  const state: Scripted = {
    url: '',
    version: 1,
    holdA: false,
    release: () => held.splice(0).forEach((send) => send()),
    held: () => held.length,
  }
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/stream')) {
      // Open and silent: the tabs share answers; no notice comes during the test.
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      streams.push(res)
      return
    }
    req.resume()
    req.on('end', () => {
      const n = state.version
      const body = JSON.stringify({
        flags: [{ key: 'banner', value: `v${n}`, reason: 'STATIC' }],
        metadata: { holdfast: { source: 'file', fetchedAt: n, stale: false } },
        eventStreams: [{ type: 'sse', endpoint: { requestUri: '/stream' } }],
      })
      const send = () => void res.writeHead(200, { 'Content-Type': 'application/json' }).end(body)
      if (state.holdA && req.headers['x-tab'] === 'a') held.push(send)
      else send()
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  cleanup.push(
    () =>
      new Promise<void>((done) => {
        state.release()
        for (const s of streams) s.destroy()
        server.closeAllConnections()
        server.close(() => done())
      }),
  )
  return state
}

/** Tab `a` asks and its answer (the current version) is held on the way; meanwhile the version moves to 2 and `b` refreshes to it. Resolves with `a`'s pending refresh (wrapped: awaiting it would wait for the held answer). */
async function heldWhileOtherRefreshes(server: Scripted, a: FlagClient, b: FlagClient): Promise<{ aDone: Promise<unknown> }> {
  server.holdA = true
  const aDone = a.refresh()
  await pollUntil(() => server.held() === 1, 5000, "A's request")
  server.version = 2
  await b.refresh()
  expect(b.getValue<string>('banner', 'none')).toBe('v2')
  return { aDone }
}

// The tabs send the same credentials (tabs with other headers share nothing): the tab's name goes on
// the wire through fetch, for the server to hold tab A's answers.
const tab = (url: string, name: 'a' | 'b') =>
  sharingTab(url, `tabs-order-${name}`, cleanup, { fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), 'X-Tab': name } }) })

it("a follower never replaces its newer values with another tab's older answer; a newer shared answer is still adopted", async () => {
  const server = await scriptedServer()
  const a = tab(server.url, 'a')
  const b = tab(server.url, 'b')
  // What the tabs say to each other, heard as a third tab would.
  const heard: Array<{ t: string; result?: { entries: Array<{ value: unknown }> } }> = []
  const channel = new BroadcastChannel(`holdfast-live:2:${server.url}/stream`)
  channel.onmessage = (event: MessageEvent) => void heard.push(event.data)
  cleanup.push(() => channel.close())
  const shared = () => heard.filter((m) => m.t === 'values').map((m) => m.result?.entries[0]?.value)
  await a.client.start()
  await b.client.start()
  expect(b.client.getValue<string>('banner', 'none')).toBe('v1')
  // Each tab's live chunk loaded (on demand, after its first answer) and shared that answer.
  await pollUntil(() => shared().length === 2, 5000, 'both tabs to share their first answer')

  // Tab A asks; its answer (v1) is built now but held on the way. B then gets v2.
  const { aDone } = await heldWhileOtherRefreshes(server, a.client, b.client)

  // A's old answer arrives and is shared with B.
  server.holdA = false
  server.release()
  await aDone
  // A newer answer, shared by A after it: B adopts it (this also says B has heard A's v1 before).
  server.version = 3
  await a.client.refresh()
  await pollUntil(() => b.client.getValue<string>('banner', 'none') === 'v3', 5000, 'B to adopt the newer shared answer')
  await pollUntil(() => shared().length === 5, 5000, 'every shared answer')
  // What the tabs shared, in order: B's v2, then A's older v1, then A's v3.
  expect(shared().slice(2)).toEqual(['v2', 'v1', 'v3'])
  // Before: v1 came back on B between v2 and v3 ([… 'v2', 'v1', 'v3']).
  expect(b.shown.slice(b.shown.indexOf('v2'))).toEqual(['v2', 'v3'])
})

// The other way round: the newer answer comes over the channel while this tab's own (older) request
// is out. Before, it was refused (a request out) and then the tab's own older answer applied: tab A
// showed v1 while the server and tab B had v2, until the next notice or refresh.
//
//   server    v1 ─────────────── v2 ──────────────────────────
//   tab A     refresh ─ (held: its answer is v1, fetchedAt 1) ─────► applies v1, then must adopt B's v2
//   tab B                          refresh ─► v2 (fetchedAt 2), posts it (A's request still out)
it("a newer answer shared while this tab's own older request is out is adopted once that request settles", async () => {
  const server = await scriptedServer()
  const a = tab(server.url, 'a')
  const b = tab(server.url, 'b')
  const name = `holdfast-live:2:${server.url}/stream`
  const heard: Array<{ t: string; result?: { entries: Array<{ value: unknown }> } }> = []
  const early = new BroadcastChannel(name)
  early.onmessage = (event: MessageEvent) => void heard.push(event.data)
  cleanup.push(() => early.close())
  const shared = () => heard.filter((m) => m.t === 'values').map((m) => m.result?.entries[0]?.value)
  await a.client.start()
  await b.client.start()
  await pollUntil(() => shared().length === 2, 5000, 'both tabs to share their first answer')
  // A probe that joins after both tabs' links: what it has heard, the tabs' (older) ports were handed first.
  let probed = 0
  const probe = new BroadcastChannel(name)
  probe.onmessage = (event: MessageEvent) => void (event.data?.t === 'values' && probed++)
  cleanup.push(() => probe.close())

  // Tab A asks; its answer (v1) is built now but held on the way. B then gets v2.
  const { aDone } = await heldWhileOtherRefreshes(server, a.client, b.client)
  // A has heard B's v2 while its own request is out.
  await pollUntil(() => probed === 1, 5000, "B's v2 shared")
  expect(a.client.getValue<string>('banner', 'none')).toBe('v1')

  // A's own, older answer arrives: it must not be the last word.
  server.holdA = false
  server.release()
  await aDone
  await pollUntil(() => a.client.getValue<string>('banner', 'none') === 'v2', 1000, 'A to adopt B\'s newer answer').catch(() => undefined)
  // Before: A stayed on v1 while the server and tab B had v2.
  expect(a.client.getValue<string>('banner', 'none')).toBe('v2')
  expect(a.shown.at(-1)).toBe('v2')
  expect(b.client.getValue<string>('banner', 'none')).toBe('v2')
})
