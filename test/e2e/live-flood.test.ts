// A stream that floods notices (a broken server, a proxy replaying them), in real Chromium with two
// tabs: the leader refetches at most about twice a second, and it does not pass every notice on to
// every other tab either (each one a structured clone and a task in every tab of the origin).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium } from './support/browser'
import { startFixture } from './support/fixture'
import { openFixture } from './support/fixturePage'
import type { Closable } from './support/servers'
import { pollUntil, startStreamingOfrep, type StreamingOfrep } from '../support/streamingOfrep'

let browser: Browser
let fixture: Closable
let context: BrowserContext
let s: StreamingOfrep

beforeAll(async () => {
  browser = await launchChromium()
  fixture = await startFixture()
})
afterAll(async () => {
  await Promise.all([browser?.close(), fixture?.close()])
})
beforeEach(async () => {
  s = await startStreamingOfrep()
  context = await browser.newContext()
})
afterEach(async () => {
  await context?.close()
  await s?.close()
})

async function open(): Promise<Page> {
  const page = await openFixture(context, fixture.url, { flags: s.url, events: 'off' })
  await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
  return page
}

describe('a stream that floods notices, with two tabs', () => {
  test('the other tabs hear a bounded number of messages, and the requests stay bounded', async () => {
    const pages = [await open(), await open()]
    await pollUntil(() => s.open.length === 1, 10_000, 'the stream')
    await new Promise((r) => setTimeout(r, 1000))
    expect(s.open.length).toBe(1)
    // A third party listening on the tabs' channel counts what they tell each other.
    const listener = await context.newPage()
    await listener.goto(fixture.url + '/missing-page')
    await listener.evaluate((name) => {
      const w = window as unknown as { heard: number }
      w.heard = 0
      new BroadcastChannel(name).onmessage = () => w.heard++
    }, `holdfast-live:2:${s.url}/stream`)
    const before = s.bulk.length
    // 100 notices every 10 ms for 2 s: about 20,000.
    const started = Date.now()
    while (Date.now() - started < 2000) {
      s.send('data: {"type":"refetchEvaluation"}\n\n'.repeat(100))
      await new Promise((r) => setTimeout(r, 10))
    }
    await new Promise((r) => setTimeout(r, 1500))
    const heard = await listener.evaluate(() => (window as unknown as { heard: number }).heard)
    // A notice and an answer per refetch (about two a second): a few dozen at most, not thousands.
    expect(heard).toBeLessThan(50)
    expect(s.bulk.length - before).toBeLessThanOrEqual(12)
    // Both tabs still work.
    for (const page of pages) expect(await page.evaluate(() => window.holdfast.getStatus().state)).toBe('ready')
  })
})
