// Two pages of one origin share one IndexedDB entry per user. Within a page, a relay's stale answer
// older than the values held never replaces them (CONTRACT §9: a relay restarted on an old data dir
// never takes the page back). Across pages the entry was written blind, last writer wins: a page
// that still held older values took such a stale answer (its values are older still) and wrote it
// over the newer values another page had saved. After a reload in an outage the older values came
// back. Now such a write leaves a newer entry of the same context alone.
//
//   relay      v1 fresh (t-3 s) ── v2 fresh (t-1 s) ─────────── stale v1.5 (t-2 s) ── 503
//   page A     v1                   refresh: v2, saved
//   page B     v1                                                refresh: v1.5, saved over v2 (before)
//   reload A                                                                         shows v1.5 (before), v2 (now)
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { Page } from 'playwright-core'
import { openFixture, readShown, waitForCachedFlags, waitForStatus } from './support/fixturePage'
import { HOST } from './support/servers'
import { useFixtureSuite } from './support/suite'

const e2e = useFixtureSuite()
/** What the relay answers now: a banner text and its metadata.holdfast, or a status. */
let answer: { banner: string; fetchedAt: number; stale: boolean } | 503 = 503
const relay = createServer((req, res) => {
  const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*' }
  req.resume()
  req.on('end', () => {
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end()
    if (answer === 503) return void res.writeHead(503, cors).end()
    const { banner, fetchedAt, stale } = answer
    res.writeHead(200, { ...cors, 'Content-Type': 'application/json' }).end(
      JSON.stringify({
        flags: [
          { key: 'checkout-kill-switch', value: true, reason: 'STATIC' },
          { key: 'banner-config', value: { text: banner }, reason: 'STATIC' },
        ],
        metadata: { holdfast: { source: stale ? 'data-dir' : 'upstream', fetchedAt, stale } },
      }),
    )
  })
})
let relayUrl = ''
beforeAll(async () => {
  await new Promise<void>((resolve) => relay.listen(0, HOST, resolve))
  relayUrl = `http://${HOST}:${(relay.address() as AddressInfo).port}`
})
afterAll(async () => {
  relay.closeAllConnections()
  await new Promise((resolve) => relay.close(resolve))
})

const banner = async (page: Page) => (await readShown(page)).values['banner-config']
const refresh = (page: Page) => page.evaluate(() => window.holdfast.refresh())

test("a page holding older values takes a relay's older stale answer, but does not write it over the newer values another page saved", async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const a = await openFixture(e2e.context, e2e.fixture.url, { flags: relayUrl, events: 'off' })
  await waitForStatus(a, 'ready', 'network')
  const b = await openFixture(e2e.context, e2e.fixture.url, { flags: relayUrl, events: 'off' })
  await waitForStatus(b, 'ready', 'network')
  await waitForCachedFlags(a)

  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  await refresh(a)
  expect(await banner(a)).toBe('v2')
  await a.waitForTimeout(300) // the write lands

  // A relay replica restarted on an old data dir: stale, as of a time between v1 and v2. Page B
  // still holds v1, older than that: it shows v1.5 (stale), as it must.
  answer = { banner: 'v1.5', fetchedAt: now - 2000, stale: true }
  expect((await refresh(b)).state).toBe('stale')
  expect(await banner(b)).toBe('v1.5')
  await b.waitForTimeout(300)

  answer = 503
  await a.reload()
  await waitForStatus(a, 'stale')
  // Before: 'v1.5', the older values page B wrote last.
  expect(await banner(a)).toBe('v2')
})
