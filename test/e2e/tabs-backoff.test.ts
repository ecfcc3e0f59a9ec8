// Tabs of one origin and a receiver that asks to wait, in Chromium (Web Locks, one IndexedDB): a
// `Retry-After` one tab was given holds every tab of the origin. Before, each tab asked once on
// its own interval and was told to wait on its own: N tabs, N requests to a receiver that had
// asked for quiet.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from './support/browser'
import { startFixture } from './support/fixture'
import { fixtureFlags, openFixture } from './support/fixturePage'
import { HOST, startFlagServer, waitFor, type Closable, type TestFlagServer } from './support/servers'

let browser: Browser
let fixture: Closable
let server: TestFlagServer
let receiver: Server
let receiverUrl: string
/** When each events POST arrived. */
const posts: number[] = []

beforeAll(async () => {
  browser = await launchChromium()
  fixture = await startFixture()
  server = await startFlagServer(fixtureFlags())
  // Every POST: 503, come back in 30 s. CORS as a cross-origin receiver must answer it, exposing
  // `Retry-After` so the page can read it.
  receiver = createServer((req, res) => {
    const cors = {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': '*',
      'Access-Control-Allow-Methods': 'POST',
      'Access-Control-Expose-Headers': 'Retry-After',
    }
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end()
    posts.push(Date.now())
    req.resume()
    req.on('end', () => res.writeHead(503, { ...cors, 'Retry-After': '30' }).end('busy'))
  })
  await new Promise<void>((resolve) => receiver.listen(0, HOST, resolve))
  receiverUrl = `http://${HOST}:${(receiver.address() as AddressInfo).port}/holdfast/v1/events`
})
afterAll(async () => {
  receiver?.closeAllConnections()
  await Promise.all([browser?.close(), fixture?.close(), server?.close(), new Promise((r) => receiver?.close(r))])
})

test("four tabs: a Retry-After one was given holds the others' interval too", async () => {
  const context = await browser.newContext()
  try {
    const tabs: Page[] = []
    for (let i = 0; i < 4; i++) {
      const page = await openFixture(context, fixture.url, { flags: server.url, events: receiverUrl, flushMs: '1000', batch: '100', exposures: '0' })
      await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
      tabs.push(page)
    }
    for (const page of tabs) await page.evaluate(() => window.holdfast.logEvent('backoff-test'))
    await waitFor(() => posts.length > 0 || undefined, 'the first events request', 10_000)
    // Every tab's interval (1 s) has ticked several times since. Before: 4 requests, one per tab.
    await new Promise((r) => setTimeout(r, 5000))
    expect(posts.length).toBeLessThanOrEqual(2)
  } finally {
    await context.close()
  }
}, 60_000)
