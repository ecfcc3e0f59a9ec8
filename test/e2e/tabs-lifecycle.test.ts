// The client through a real browser tab's lifecycle, in Chromium driven over CDP: a leader tab
// frozen (Page.setWebLifecycleState), a page kept in the back/forward cache, many hidden tabs made
// visible at once. Requests are counted at the server, by route.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { createFlagServer, type FlagServer, type Middleware } from '@holdfast/server'
import { launchChromium } from './support/browser'
import { startFixture } from './support/fixture'
import { fixtureFlags, openFixture } from './support/fixturePage'
import { waitFor, type Closable } from './support/servers'

const silent = { info() {}, warn() {}, error() {} }
const KEY = 'checkout-kill-switch'

let browser: Browser
let fixture: Closable
let context: BrowserContext
let dir: string
let file: string
let server: FlagServer
const counts: Record<string, number> = {}
const count: Middleware = async (_req, _res, route, next) => {
  counts[route.name] = (counts[route.name] ?? 0) + 1
  return next()
}
const get = (name: string) => counts[name] ?? 0

let current = true
async function flip(): Promise<string> {
  current = !current
  const flags = JSON.parse(await readFile(file, 'utf8'))
  flags.flags[KEY].defaultVariant = current ? 'on' : 'off'
  await writeFile(file, JSON.stringify(flags, null, 2))
  return String(current)
}
const shown = (page: Page) => page.evaluate((key) => document.querySelector(`[data-testid="flag-${key}-value"]`)?.textContent, KEY)
const waitShown = (page: Page, value: string, timeout = 5000) =>
  page.waitForFunction(([key, value]) => document.querySelector(`[data-testid="flag-${key}-value"]`)?.textContent === value, [KEY, value] as const, { timeout })

async function open(params: Record<string, string> = {}): Promise<Page> {
  const page = await openFixture(context, fixture.url, { flags: server.url, events: 'off', ...params })
  await waitShown(page, String(current), 15_000)
  return page
}
const streams = () => server.handler.stream!.connections()

beforeAll(async () => {
  browser = await launchChromium()
  fixture = await startFixture()
})
afterAll(async () => {
  await Promise.all([browser?.close(), fixture?.close()])
})
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'holdfast-e2e-lifecycle-'))
  file = join(dir, 'flags.json')
  current = true
  await writeFile(file, JSON.stringify(fixtureFlags(), null, 2))
  for (const key of Object.keys(counts)) delete counts[key]
  server = await createFlagServer({ flags: file, port: 0, logger: silent, maxEventLoopDelayMs: 0, middleware: [count], liveUpdates: { retryMs: 500 } })
  context = await browser.newContext()
})
afterEach(async () => {
  await context?.close()
  await server?.close()
  await rm(dir, { recursive: true, force: true })
})

/** Page lifecycle events as the browser fires them. */
const lifecycle = (page: Page, type: 'freeze' | 'resume') => page.evaluate((type) => document.dispatchEvent(new Event(type)), type)

describe('a frozen leader tab', () => {
  // Chromium freezes a hidden tab on its own (and `Page.setWebLifecycleState` asks it to); it fires
  // `freeze` first, and nothing of the page runs until `resume`. Headless Chromium keeps every page
  // visible and ignores that CDP call for a visible page (its timers keep ticking), so the test
  // fires the lifecycle events themselves: what the client does in them is what is under test.
  test('another tab takes the stream at once, a change made meanwhile reaches every live tab, and the thawed tab catches up without a second stream', async () => {
    const leader = await open()
    await waitFor(() => streams() === 1 || undefined, 'the stream')
    const others = [await open(), await open()]
    await new Promise((r) => setTimeout(r, 1500))
    expect(streams()).toBe(1)
    const before = get('stream')
    const frozenAt = Date.now()
    await lifecycle(leader, 'freeze')
    await waitFor(() => (get('stream') > before && streams() === 1) || undefined, 'another tab to take the stream', 5000)
    expect(Date.now() - frozenAt).toBeLessThan(2000)
    const value = await flip()
    const flipped = Date.now()
    await Promise.all(others.map((p) => waitShown(p, value)))
    expect(Date.now() - flipped).toBeLessThan(2000)
    await new Promise((r) => setTimeout(r, 300))
    expect(await shown(leader)).not.toBe(value) // frozen: it heard nothing

    const bulk = get('ofrep.bulk')
    await lifecycle(leader, 'resume')
    await waitShown(leader, value, 3000)
    // Thawed, it queues for the stream again behind the tab that leads now: still one stream.
    await new Promise((r) => setTimeout(r, 2500))
    expect(streams()).toBe(1)
    expect(get('ofrep.bulk') - bulk).toBeLessThanOrEqual(2)
    const next = await flip()
    await Promise.all([leader, ...others].map((p) => waitShown(p, next)))
    expect(streams()).toBe(1)
  })
})

describe('a page restored from the back/forward cache', () => {
  let bfBrowser: Browser
  beforeAll(async () => {
    bfBrowser = await launchChromium({ backForwardCache: true })
  })
  afterAll(async () => {
    await bfBrowser?.close()
  })

  test('with another tab of the origin open: restored (not reloaded), it shows a change made while it was away, and the origin keeps one stream', async () => {
    const ctx = await bfBrowser.newContext()
    try {
      await ctx.addInitScript(() => addEventListener('pageshow', (e) => ((window as unknown as { restored: boolean }).restored = e.persisted)))
      const params = new URLSearchParams({ flags: server.url, events: 'off' })
      const page = await ctx.newPage()
      const cdp = await ctx.newCDPSession(page)
      await cdp.send('Page.enable')
      const notRestored: unknown[] = []
      cdp.on('Page.backForwardCacheNotUsed', (e) => notRestored.push(e.notRestoredExplanations))
      await page.goto(`${fixture.url}/?${params}`)
      await waitShown(page, String(current), 15_000)
      await waitFor(() => streams() === 1 || undefined, 'the stream')
      const other = await ctx.newPage()
      await other.goto(`${fixture.url}/?${params}`)
      await waitShown(other, String(current), 15_000)
      await new Promise((r) => setTimeout(r, 1500))
      const before = get('stream')

      await page.goto(`${fixture.url}/away.txt`)
      await waitFor(() => (get('stream') > before && streams() === 1) || undefined, 'the other tab to take the stream', 5000)
      const value = await flip()
      await waitShown(other, value)

      await page.goBack({ waitUntil: 'commit' })
      await waitShown(page, value, 5000)
      // A page the cache had to drop is loaded anew: slower, and it starts over (events it had in
      // memory, the React state of the app). Messages the other tab posts must not evict it.
      expect(await page.evaluate(() => (window as unknown as { restored: boolean }).restored), JSON.stringify(notRestored)).toBe(true)
      await new Promise((r) => setTimeout(r, 2500))
      expect(streams()).toBe(1)
      const next = await flip()
      await Promise.all([page, other].map((p) => waitShown(p, next)))
    } finally {
      await ctx.close()
    }
  })
})
