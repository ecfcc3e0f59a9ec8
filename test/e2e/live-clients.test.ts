// Two clients on one page (two providers, or a provider and an OpenFeature provider), in real
// Chromium: they share the page's one stream connection like two tabs do, a notice costs one bulk
// request for their user, and closing either one leaves the other listening. And the tab holding
// the stream closing: a change made during the hand-over reaches the tabs of every user.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { FlagServer } from '@holdfast/server'
import { launchChromium } from './support/browser'
import { KEY, killSwitch, routeCounter, serveSwitch, waitShown } from './support/killSwitch'
import { startFixture } from './support/fixture'
import { openFixture } from './support/fixturePage'
import type { Closable } from './support/servers'


let browser: Browser
let fixture: Closable
let context: BrowserContext
let server: FlagServer
const { count, get, reset } = routeCounter()
const sw = killSwitch()
const flip = () => sw.flip()

async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Both clients' view of the kill switch. */
const gates = (page: Page) =>
  page.evaluate((key) => [window.holdfast.getGate(key), (window as unknown as { second: typeof window.holdfast }).second.getGate(key)], KEY)

async function openWithSecond(storageName: string): Promise<Page> {
  const page = await openFixture(context, fixture.url, { flags: server.url, events: 'off' })
  await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
  await page.evaluate(
    ([url, storageName]) => {
      const second = window.createHoldfastClient({ url, context: { targetingKey: 'ada', plan: 'pro' }, storageName, events: false })
      ;(window as unknown as { second: unknown }).second = second
      return second.start().then(() => undefined)
    },
    [server.url, storageName] as const,
  )
  return page
}

beforeAll(async () => {
  browser = await launchChromium()
  fixture = await startFixture()
})
afterAll(async () => {
  await Promise.all([browser?.close(), fixture?.close()])
})
beforeEach(async () => {
  await sw.prepare('holdfast-e2e-live-clients-')
  reset()
  server = await serveSwitch(sw, [count])
  context = await browser.newContext()
})
afterEach(async () => {
  await context?.close()
  await server?.close()
  await sw.remove()
})

describe('two clients of one user on one page', () => {
  for (const storageName of ['holdfast', 'holdfast-second']) {
    test(`${storageName === 'holdfast' ? 'the same' : 'another'} storageName: one stream, one request per change, and either may close`, async () => {
      const page = await openWithSecond(storageName)
      await waitUntil(() => server.handler.stream!.connections() === 1, 'the stream')
      await new Promise((r) => setTimeout(r, 1500)) // the second client would have opened its own by now
      expect(server.handler.stream!.connections()).toBe(1)
      for (let i = 0; i < 2; i++) {
        const bulk = get('ofrep.bulk')
        const value = await flip()
        await waitUntil(async () => (await gates(page)).every((v) => v === value), 'both clients to show the change', 5000)
        await new Promise((r) => setTimeout(r, 700))
        expect(get('ofrep.bulk') - bulk).toBe(1)
      }
      // Close the first client (the provider's): the second keeps hearing notices.
      await page.evaluate(() => window.holdfast.close())
      await waitUntil(() => server.handler.stream!.connections() === 1, 'the second client on the stream', 5000)
      const value = await flip()
      const started = Date.now()
      await waitUntil(async () => (await gates(page))[1] === value, 'the second client to show the change', 5000)
      expect(Date.now() - started).toBeLessThan(2000)
    })
  }

  test('closing the second client leaves the first listening', async () => {
    const page = await openWithSecond('holdfast-second')
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the stream')
    await new Promise((r) => setTimeout(r, 1500))
    await page.evaluate(() => (window as unknown as { second: typeof window.holdfast }).second.close())
    await new Promise((r) => setTimeout(r, 500))
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the first client on the stream', 5000)
    const value = await flip()
    const started = Date.now()
    await waitShown(page, String(value))
    expect(Date.now() - started).toBeLessThan(2000)
  })
})

describe('the tab holding the stream closes', () => {
  test('a change made during the hand-over reaches every tab, of its user and of another', async () => {
    const openTab = async (user: string) => {
      const page = await openFixture(context, fixture.url, { flags: server.url, events: 'off', user })
      await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
      return page
    }
    const leader = await openTab('ada')
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the stream')
    const others = [await openTab('ada'), await openTab('bob')]
    await new Promise((r) => setTimeout(r, 1500))
    const streams = get('stream')
    await leader.close()
    const value = await flip() // at once: before another tab's stream can be open
    const started = Date.now()
    await Promise.all(
      others.map((page) => waitUntil(async () => (await page.evaluate((key) => window.holdfast.getGate(key), KEY)) === value, 'every tab to show the change', 5000)),
    )
    expect(Date.now() - started).toBeLessThan(3000)
    expect(get('stream')).toBe(streams + 1)
  })
})
