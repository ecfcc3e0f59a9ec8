// A tab frozen while it sends the shared event queue, in Chromium. Chrome freezes background tabs
// (Page Lifecycle `freeze`): nothing of the page runs until `resume`, so a flush lock it holds
// then is held for as long as it stays frozen (hours, on a phone), and every other tab of the
// origin queues behind it. Headless Chromium ignores `Page.setWebLifecycleState` for its (always
// visible) pages, so the test does what the browser does: it fires `freeze`, then stops the page's
// script (the debugger pauses it at the next thing it would run: a timer, a fetch answer, a lock
// grant) until it fires `resume`. And a tab killed mid-flush (its renderer crashed through CDP).
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core'
import { launchChromium } from './support/browser'
import { startFixture } from './support/fixture'
import { fixtureFlags, openFixture } from './support/fixturePage'
import { startFlagServer, startRecordingProxy, waitFor, type Closable, type RecordingProxy, type TestFlagServer } from './support/servers'

let browser: Browser
let fixture: Closable
let server: TestFlagServer
let proxy: RecordingProxy
let context: BrowserContext

beforeAll(async () => {
  browser = await launchChromium()
  fixture = await startFixture()
  server = await startFlagServer(fixtureFlags())
})
afterAll(async () => {
  await Promise.all([browser?.close(), fixture?.close(), server?.close()])
})
beforeEach(async () => {
  proxy = await startRecordingProxy(server.url)
  context = await browser.newContext()
})
afterEach(async () => {
  await context?.close()
  await proxy?.close()
})

/** Freezes the page as Chromium does: `freeze` fires, then none of its script runs until `thaw`. */
async function freeze(page: Page): Promise<{ thaw(): Promise<void> }> {
  const cdp: CDPSession = await context.newCDPSession(page)
  await page.evaluate(() => document.dispatchEvent(new Event('freeze')))
  await cdp.send('Debugger.enable')
  await cdp.send('Debugger.pause')
  return {
    async thaw() {
      // Not paused when nothing of the page had to run meanwhile.
      await cdp.send('Debugger.resume').catch(() => {})
      await cdp.send('Debugger.disable')
      await page.evaluate(() => document.dispatchEvent(new Event('resume')))
    },
  }
}

/** How many times the receiver accepted each event of this run, by its `n`. */
function accepted(run: string): Map<number, number> {
  const times = new Map<number, number>()
  for (const r of proxy.requests)
    for (const e of (r.body as { events?: Array<{ metadata?: { run?: string; n?: number } }> })?.events ?? [])
      if (e.metadata?.run === run && r.status === 202) times.set(e.metadata.n!, (times.get(e.metadata.n!) ?? 0) + 1)
  return times
}

async function open(params: Record<string, string>): Promise<Page> {
  const page = await openFixture(context, fixture.url, { flags: server.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '600000', batch: '10', exposures: '0', ...params })
  await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
  return page
}

const log = (page: Page, run: string, from: number, to: number) =>
  page.evaluate(
    async ({ run, from, to }) => {
      for (let n = from; n < to; n++) window.holdfast.logEvent('freeze-test', { metadata: { run, n } })
      // Persisted within 100 ms of logging: then the other tab can see (and send) them.
      await new Promise((r) => setTimeout(r, 300))
    },
    { run, from, to },
  )

describe('a tab frozen mid-flush', () => {
  test.each(['Web Locks', 'the storage lease (no Web Locks)'])('%s: the other tab of the origin delivers its events (and the frozen tab\'s) while it stays frozen; thawed, nothing is lost', async (how) => {
    if (how !== 'Web Locks')
      await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true }))
    // The default request timeout, 5 s: the lease lives 15 s without renewal, the other tab's flush waits 5 s.
    const params = {}
    // Slow enough that the frozen tab's pass is still waiting for its first answer when it freezes.
    proxy.delayMs = 1500
    const run = randomUUID()
    const frozen = await open(params)
    const other = await open(params)
    await log(frozen, run, 0, 25)
    void frozen.evaluate(() => void window.holdfast.flush())
    await new Promise((r) => setTimeout(r, 300))
    const { thaw } = await freeze(frozen)

    const started = Date.now()
    void other.evaluate(async ({ run }) => {
      for (let n = 100; n < 105; n++) window.holdfast.logEvent('freeze-test', { metadata: { run, n } })
      await window.holdfast.flush()
    }, { run })
    // Three batches of 10 at 1.5 s each, queued behind nobody. Before: the frozen tab kept the lock
    // (or its lease), the other tab's flush gave up after its request timeout (5 s) and nothing of
    // it arrived until a later trigger found the lease expired, or ever, with Web Locks.
    await waitFor(() => [100, 101, 102, 103, 104].every((n) => accepted(run).has(n)) || undefined, "the other tab's events to arrive while the first is frozen", 12_000)
    expect(Date.now() - started).toBeLessThan(12_000)
    // The frozen tab's events too: they were in the shared queue.
    expect(accepted(run).size).toBe(30)

    await thaw()
    await frozen.evaluate(async ({ run }) => {
      for (let n = 200; n < 203; n++) window.holdfast.logEvent('freeze-test', { metadata: { run, n } })
      await window.holdfast.flush()
    }, { run })
    await waitFor(() => accepted(run).size === 33 || undefined, 'every event to arrive', 10_000)
    // The batch the frozen tab had out lands too; the other tab sent it again: one batch at most.
    expect([...accepted(run).values()].filter((t) => t > 1).length).toBeLessThanOrEqual(10)
    for (const page of [frozen, other]) expect(await page.evaluate(() => window.holdfast.getEventStats().queued)).toBe(0)
  })
})

describe('a tab frozen while it waits for the lock', () => {
  test('it is not granted the lock frozen: a third tab sends once the first is done', async () => {
    proxy.delayMs = 1500
    const run = randomUUID()
    const [sending, waiting, third] = [await open({}), await open({}), await open({})]
    await log(sending, run, 0, 5)
    sending.evaluate(() => window.holdfast.flush()).catch(() => {})
    await new Promise((r) => setTimeout(r, 300))
    // Its flush waits (up to its 5 s request timeout) for the lock the first tab holds.
    await log(waiting, run, 100, 105)
    waiting.evaluate(() => window.holdfast.flush()).catch(() => {})
    await new Promise((r) => setTimeout(r, 200))
    const { thaw } = await freeze(waiting)
    // Before: the first tab done (1.5 s), the lock went to the frozen tab's waiting request, held
    // until it thawed; the third tab's flush gave up after 5 s and its events waited.
    await log(third, run, 200, 205)
    const started = Date.now()
    await third.evaluate(() => window.holdfast.flush())
    await waitFor(() => [200, 201, 202, 203, 204].every((n) => accepted(run).has(n)) || undefined, "the third tab's events", 8000)
    expect(Date.now() - started).toBeLessThan(8000)
    await thaw()
    await waiting.evaluate(() => window.holdfast.flush())
    await waitFor(() => accepted(run).size === 15 || undefined, 'every event to arrive', 10_000)
  })
})

describe('a tab killed mid-flush', () => {
  test('the browser lets its lock go; the tab still open, with nothing of its own to send, sends every event the dead one left', async () => {
    proxy.delayMs = 1000
    const run = randomUUID()
    // A 1 s interval: the open tab looks again within a second of the other's death.
    const survivor = await open({ flushMs: '1000' })
    const killed = await open({})
    await log(killed, run, 0, 25)
    killed.evaluate(() => void window.holdfast.flush()).catch(() => {})
    await new Promise((r) => setTimeout(r, 300))
    const cdp = await context.newCDPSession(killed)
    // The renderer dies as in a crash (or an OOM kill): no pagehide, no unload, nothing flushed.
    // (The call itself never answers: its renderer is gone.)
    await Promise.race([cdp.send('Page.crash').catch(() => {}), new Promise((r) => setTimeout(r, 1000))])
    // Before: the open tab had nothing of its own queued and skipped every interval; the dead
    // tab's events waited in IndexedDB for the next page load.
    await waitFor(() => accepted(run).size === 25 || undefined, 'every event of the dead tab to arrive', 10_000)
    await waitFor(async () => (await survivor.evaluate(() => window.holdfast.getEventStats().queued)) === 0 || undefined, 'nothing left queued', 5000)
  })
})
