// Two tabs of one origin sharing answers (CONTRACT §10) behind a fleet of relays, one of which
// serves a stale answer older than what the tabs hold (§9). A tab keeps its newer values over that
// answer (flags/merge.ts); it must also keep knowing them as the newer ones, or the next answer a
// tab shares (a late message, a request that started before) is measured against the stale one's
// `fetchedAt` and taken back in time.
//
//   fleet   fresh v3 (fetchedAt 3) ─── stale v1 (fetchedAt 1, to tab A) ─── fresh v2 (fetchedAt 2, to tab B)
//   tab A   v3 ─────────────────────── keeps v3, stale ───────────────────── hears B's v2: must keep v3
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { pollUntil, sharingTab } from '../support/streamingOfrep'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/** What the fleet answers each tab (by `X-Tab`) next: a version and whether the relay says stale. */
async function fleet() {
  const answer: Record<string, { n: number; stale: boolean; at?: number }> = { a: { n: 3, stale: false }, b: { n: 3, stale: false } }
  const streams: ServerResponse[] = []
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/stream')) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      streams.push(res)
      return
    }
    req.resume()
    req.on('end', () => {
      const { n, stale, at = n } = answer[String(req.headers['x-tab'])]
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(
        JSON.stringify({
          flags: [{ key: 'banner', value: `v${n}`, reason: 'STATIC' }],
          metadata: { holdfast: { source: stale ? 'data-dir' : 'upstream', fetchedAt: at, stale } },
          eventStreams: [{ type: 'sse', endpoint: { requestUri: '/stream' } }],
        }),
      )
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  cleanup.push(
    () =>
      new Promise<void>((done) => {
        for (const s of streams) s.destroy()
        server.closeAllConnections()
        server.close(() => done())
      }),
  )
  return { url, answer }
}

/** How many answers the tabs have shared so far, heard on the channel of the fleet's stream. */
function sharedAnswers(url: string): () => number {
  const heard: Array<{ t: string }> = []
  const channel = new BroadcastChannel(`holdfast-live:2:${url}/stream`)
  channel.onmessage = (event: MessageEvent) => void heard.push(event.data)
  cleanup.push(() => channel.close())
  return () => heard.filter((m) => m.t === 'values').length
}

const tab = (url: string, name: 'a' | 'b') =>
  sharingTab(url, `tabs-stale-${name}`, cleanup, { fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), 'X-Tab': name } }) })

it("a tab that kept its values over an older stale answer still refuses another tab's answer older than those values", async () => {
  const server = await fleet()
  const a = tab(server.url, 'a')
  const b = tab(server.url, 'b')
  const shared = sharedAnswers(server.url)
  await a.client.start()
  await b.client.start()
  await pollUntil(() => shared() === 2, 5000, 'both tabs to share their first answer')
  expect(a.client.getDetails('banner', 'none')).toMatchObject({ value: 'v3', stale: false })

  // Tab A's request reaches the relay restarted on an old data dir: stale, from before v3.
  server.answer.a = { n: 1, stale: true }
  expect((await a.client.refresh()).error).toMatchObject({ code: 'UPSTREAM_STALE' })
  expect(a.client.getDetails('banner', 'none')).toMatchObject({ value: 'v3', stale: true })
  await pollUntil(() => shared() === 3, 5000, "A's stale answer shared")

  // Tab B gets (and shares) an answer from before v3 too: a relay still catching up.
  server.answer.b = { n: 2, stale: false }
  await b.client.refresh()
  await pollUntil(() => shared() === 4, 5000, "B's answer shared")
  await pollUntil(() => a.client.getValue('banner', 'none') !== 'v3', 300, 'A to change').catch(() => undefined)
  expect(a.client.getValue('banner', 'none')).toBe('v3')
  expect(a.shown).not.toContain('v2')
})

// A relay of the fleet whose clock runs hours ahead dates its answers in this tab's future. The tab
// held that time as is, so every answer another tab shared for hours after, fresh and newer (a
// change the leader fetched on a notice), read as older and was dropped: the tab showed the old
// value until a request of its own. Times are measured as the single-tab merge measures them,
// capped by this device's clock.
it("a tab that got an answer from a relay clock hours ahead still takes another tab's newer fresh answer", async () => {
  const server = await fleet()
  const a = tab(server.url, 'a')
  const b = tab(server.url, 'b')
  const shared = sharedAnswers(server.url)
  server.answer.a = { n: 1, stale: false, at: Date.now() + 5 * 3600_000 }
  server.answer.b = { n: 1, stale: false, at: Date.now() }
  await a.client.start()
  await b.client.start()
  await pollUntil(() => shared() === 2, 5000, 'both tabs to share their first answer')
  expect(a.client.getValue('banner', 'none')).toBe('v1')

  // The flag changes; tab B's request reaches a relay with a right clock, a moment later.
  server.answer.b = { n: 2, stale: false, at: Date.now() + 1000 }
  await b.client.refresh()
  await pollUntil(() => shared() === 3, 5000, "B's answer shared")
  await pollUntil(() => a.client.getValue('banner', 'none') === 'v2', 2000, 'A to take v2')
  expect(a.client.getDetails('banner', 'none')).toMatchObject({ value: 'v2', stale: false })
})
