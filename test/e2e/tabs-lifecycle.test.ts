// The client through a real browser tab's lifecycle, in Chromium: a leader tab frozen, a page kept
// in the back/forward cache (with another tab of the origin open, and with events on their way
// out), two tabs sending one shared event queue while one closes, a notice flood measured on the
// main thread, ten hidden tabs made visible at once. Requests are counted at the server, by route.
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { FlagServer } from '@holdfast/server'
import { launchChromium } from './support/browser'
import { KEY, killSwitch, routeCounter, serveSwitch, shown, waitShown } from './support/killSwitch'
import { startFixture } from './support/fixture'
import { openFixture } from './support/fixturePage'
import { startRecordingProxy, waitFor, type Closable } from './support/servers'
import { pollUntil, startStreamingOfrep } from '../support/streamingOfrep'


let browser: Browser
let fixture: Closable
let context: BrowserContext
let server: FlagServer
const { count, get, reset } = routeCounter()
const sw = killSwitch()
const flip = async () => String(await sw.flip())

async function open(params: Record<string, string> = {}): Promise<Page> {
  const page = await openFixture(context, fixture.url, { flags: server.url, events: 'off', ...params })
  await waitShown(page, String(sw.current), 15_000)
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
  await sw.prepare('holdfast-e2e-lifecycle-')
  reset()
  server = await serveSwitch(sw, [count])
  context = await browser.newContext()
})
afterEach(async () => {
  await context?.close()
  await server?.close()
  await sw.remove()
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
      await waitShown(page, String(sw.current), 15_000)
      await waitFor(() => streams() === 1 || undefined, 'the stream')
      const other = await ctx.newPage()
      await other.goto(`${fixture.url}/?${params}`)
      await waitShown(other, String(sw.current), 15_000)
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
      // It queued for the stream again: when the other tab closes, it takes the stream over.
      const streamsBefore = get('stream')
      await other.close()
      await waitFor(() => (get('stream') > streamsBefore && streams() === 1) || undefined, 'the restored tab to take the stream', 5000)
      const last = await flip()
      await waitShown(page, last)
    } finally {
      await ctx.close()
    }
  })
})

describe('events of two tabs sharing one queue', () => {
  test.each(['Web Locks', 'the storage lease (no Web Locks)'])('%s: 500 events each while both flush in small batches to a slow receiver, one tab closed mid-flush: every event arrives, duplicates stay within one batch', async (how) => {
    if (how !== 'Web Locks')
      await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true }))
    const proxy = await startRecordingProxy(server.url)
    try {
      proxy.delayMs = 60
      const run = randomUUID()
      const N = 500
      const batch = 20
      // A 2 s request timeout makes the storage lease 9 s (2 × timeout + 5 s): a tab closed while it
      // holds the lease holds the other tab off until then, not for the default 15 s.
      const params = { events: `${proxy.url}/holdfast/v1/events`, flushMs: '200', batch: String(batch), exposures: '0', timeoutMs: '2000' }
      const tabs = [
        await open(params),
        await open(params),
      ]
      const sent = () => {
        const times = new Map<string, number>()
        for (const r of proxy.requests)
          for (const e of (r.body as { events?: Array<{ id: string; metadata?: { run?: string } }> })?.events ?? [])
            if (e.metadata?.run === run && r.status === 202) times.set(e.id, (times.get(e.id) ?? 0) + 1)
        return times
      }
      await Promise.all(
        tabs.map((tab, i) =>
          tab.evaluate(
            async ({ run, tab, N }) => {
              const flushes: Promise<void>[] = []
              for (let n = 0; n < N; n++) {
                window.holdfast.logEvent('tab-event', { metadata: { run, tab, n } })
                if (n % 25 === 24) {
                  flushes.push(window.holdfast.flush())
                  await new Promise((r) => setTimeout(r, 5))
                }
              }
              // Persisted within 100 ms of logging: then nothing is only in this page's memory.
              await new Promise((r) => setTimeout(r, 300))
            },
            { run, tab: `tab-${i}`, N },
          ),
        ),
      )
      // Closed while the queue is still being sent (a batch every 60 ms or more: 50 of them).
      expect(sent().size).toBeLessThan(2 * N)
      await tabs[1].close()
      await waitFor(() => sent().size === 2 * N || undefined, `all ${2 * N} events to arrive`, 20_000)
      await tabs[0].evaluate(() => window.holdfast.flush())
      await new Promise((r) => setTimeout(r, 500))
      const twice = [...sent()].filter(([, t]) => t > 1)
      expect(twice.length, 'events sent twice').toBeLessThanOrEqual(batch)
      expect(await tabs[0].evaluate(() => window.holdfast.getEventStats().queued)).toBe(0)
    } finally {
      await proxy.close()
    }
  })
})

describe('a notice flood in the leader tab', () => {
  test('10,000 notices a second for 2 s: the leader\'s main thread stays responsive, refetches are coalesced, the other tab is not flooded', async () => {
    const s = await startStreamingOfrep()
    try {
      const watch = () => {
        const w = window as unknown as { longTasks: number[]; maxLag: number; heard: number }
        w.longTasks = []
        w.maxLag = 0
        new PerformanceObserver((list) => list.getEntries().forEach((e) => w.longTasks.push(e.duration))).observe({ type: 'longtask' })
        let last = performance.now()
        setInterval(() => {
          const now = performance.now()
          w.maxLag = Math.max(w.maxLag, now - last - 10)
          last = now
        }, 10)
      }
      const pages: Page[] = []
      for (let i = 0; i < 2; i++) {
        const page = await openFixture(context, fixture.url, { flags: s.url, events: 'off' })
        await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
        pages.push(page)
        if (i === 0) await pollUntil(() => s.open.length === 1, 10_000, 'the stream')
      }
      await new Promise((r) => setTimeout(r, 1000))
      expect(s.open.length).toBe(1)
      await pages[1].evaluate((name) => {
        const w = window as unknown as { heard: number }
        w.heard = 0
        new BroadcastChannel(name).addEventListener('message', () => w.heard++)
      }, `holdfast-live:2:${s.url}/stream`)
      for (const page of pages) await page.evaluate(watch)
      const before = s.bulk.length
      const started = Date.now()
      // 20,000 notices, 50 every 5 ms: 2 s when the test's own timers keep time. A count, not a
      // duration: on a loaded machine (a full run in CI) this loop's timers came late and a 2 s
      // loop sent only 7,850, failing the test on its own load generator, not on the client.
      for (let sent = 0; sent < 20_000; sent += 50) {
        s.send('data: {"type":"refetchEvaluation"}\n\n'.repeat(50))
        await new Promise((r) => setTimeout(r, 5))
      }
      await new Promise((r) => setTimeout(r, 1000))
      const [leader, follower] = await Promise.all(
        pages.map((p) => p.evaluate(() => {
          const w = window as unknown as { longTasks: number[]; maxLag: number; heard: number }
          return { longTasks: w.longTasks.reduce((a, b) => a + b, 0), count: w.longTasks.length, maxLag: w.maxLag, heard: w.heard }
        })),
      )
      // The flood and the second after it: 3 s when the machine keeps up, longer when the loop ran slow.
      const seconds = Math.max(3, (Date.now() - started) / 1000)
      // Measured: no long task, timers late by under 10 ms. The bounds leave room for a loaded machine.
      expect(leader.longTasks, JSON.stringify(leader)).toBeLessThan(300)
      expect(leader.maxLag, JSON.stringify(leader)).toBeLessThan(250)
      // At most about two refetches a second (measured: 5 in 3 s; 8 allowed in 3 s), and a message or
      // two per refetch. Per second of flood, so a slow loop is no excuse: uncoalesced, 20,000 notices
      // would be hundreds of refetches.
      expect(s.bulk.length - before).toBeLessThanOrEqual(Math.ceil(2 * seconds) + 2)
      expect(follower.heard).toBeLessThan(10 * seconds)
      for (const page of pages) expect(await page.evaluate(() => window.holdfast.getStatus().state)).toBe('ready')
    } finally {
      await s.close()
    }
  })
})

/** Makes the page hidden or visible as the browser would (headless Chromium keeps every page visible). */
const setVisible = (page: Page, visible: boolean) =>
  page.evaluate((visible) => {
    Object.defineProperty(document, 'visibilityState', { value: visible ? 'visible' : 'hidden', configurable: true })
    Object.defineProperty(document, 'hidden', { value: !visible, configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  }, visible)

describe('hidden tabs', () => {
  test('10 tabs hidden past the inactivity delay hold no stream and send nothing; all made visible at once, one full refetch each and one stream', async () => {
    await server.close()
    server = await serveSwitch(sw, [count], { liveUpdates: { inactivityDelaySec: 1 } })
    const pages: Page[] = []
    for (let i = 0; i < 10; i++) pages.push(await open())
    await waitFor(() => streams() === 1 || undefined, 'the stream')
    await new Promise((r) => setTimeout(r, 1500))
    const hidden = get('ofrep.bulk')
    await Promise.all(pages.map((p) => setVisible(p, false)))
    await new Promise((r) => setTimeout(r, 3000))
    expect(streams()).toBe(0)
    expect(get('ofrep.bulk') - hidden).toBe(0)
    const value = await flip()
    await new Promise((r) => setTimeout(r, 1000))
    const bulk = get('ofrep.bulk')
    const stream = get('stream')
    await Promise.all(pages.map((p) => setVisible(p, true)))
    await Promise.all(pages.map((p) => waitShown(p, value)))
    await new Promise((r) => setTimeout(r, 3000))
    // Measured: 11 (each tab's full refetch, then the new leader's one catch-up) and one stream.
    expect(get('ofrep.bulk') - bulk).toBeLessThanOrEqual(12)
    expect(get('stream') - stream).toBeLessThanOrEqual(2)
    expect(streams()).toBe(1)
  })
})

describe('the leader tab closed while the other tab is hidden', () => {
  test('the hidden tab does not take the stream over (it sleeps, as after the inactivity delay); shown, it catches up in full and opens it', async () => {
    await server.close()
    // An inactivity delay of an hour: only the takeover is being asked about, not the delay.
    server = await serveSwitch(sw, [count], { liveUpdates: { inactivityDelaySec: 3600 } })
    const leader = await open()
    await waitFor(() => streams() === 1 || undefined, 'the stream')
    const other = await open()
    await new Promise((r) => setTimeout(r, 500))
    await setVisible(other, false)
    const bulk = get('ofrep.bulk')
    const opened = get('stream')
    await leader.close()
    await new Promise((r) => setTimeout(r, 3000))
    // Before: the hidden tab opened the stream and refetched to catch up, for nobody to see.
    expect(get('stream') - opened).toBe(0)
    expect(streams()).toBe(0)
    expect(get('ofrep.bulk') - bulk).toBe(0)
    const value = await flip()
    await setVisible(other, true)
    await waitShown(other, value)
    await waitFor(() => streams() === 1 || undefined, 'the stream once shown')
  })
})

describe('events of a page kept in the back/forward cache', () => {
  test('queued before leaving, sent on the way out or after the restore: none lost, none sent twice', async () => {
    const bf = await launchChromium({ backForwardCache: true })
    const proxy = await startRecordingProxy(server.url)
    try {
      const ctx = await bf.newContext()
      await ctx.addInitScript(() => addEventListener('pageshow', (e) => ((window as unknown as { restored: boolean }).restored = e.persisted)))
      // Slow enough that the pass started on the way out is still waiting for its answer when the page is frozen.
      proxy.delayMs = 300
      const run = randomUUID()
      const page = await ctx.newPage()
      await page.goto(`${fixture.url}/?${new URLSearchParams({ flags: server.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '600000', batch: '10', exposures: '0' })}`)
      await waitShown(page, String(sw.current), 15_000)
      await page.evaluate(async (run) => {
        for (let n = 0; n < 25; n++) window.holdfast.logEvent('before-leaving', { metadata: { run, n } })
        await new Promise((r) => setTimeout(r, 300))
      }, run)
      await page.goto(`${fixture.url}/away.txt`)
      await new Promise((r) => setTimeout(r, 1000))
      await page.goBack({ waitUntil: 'commit' })
      await page.waitForFunction(() => (window as unknown as { restored?: boolean }).restored !== undefined)
      // Restored, not reloaded: the keepalive pass it started on the way out was frozen with the page.
      expect(await page.evaluate(() => (window as unknown as { restored: boolean }).restored)).toBe(true)
      await page.evaluate(async (run) => {
        for (let n = 25; n < 30; n++) window.holdfast.logEvent('after-restore', { metadata: { run, n } })
        await window.holdfast.flush()
      }, run)
      await new Promise((r) => setTimeout(r, 1500))
      await page.evaluate(() => window.holdfast.flush())
      const times = new Map<number, number>()
      for (const r of proxy.requests)
        for (const e of (r.body as { events?: Array<{ metadata?: { run?: string; n?: number } }> })?.events ?? [])
          if (e.metadata?.run === run) times.set(e.metadata.n!, (times.get(e.metadata.n!) ?? 0) + 1)
      expect(times.size).toBe(30)
      expect([...times.values()].filter((t) => t > 1)).toEqual([])
    } finally {
      await proxy.close()
      await bf.close()
    }
  })
})

/** The fixture sending its events through `proxy`, in batches of 10, on no interval, without exposures. */
const eventsUrl = (proxy: { url: string }) =>
  `${fixture.url}/?${new URLSearchParams({ flags: server.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '600000', batch: '10', exposures: '0' })}`

/**
 * Two tabs of the origin on `url` in a new context of `bf` (a browser with the back/forward cache
 * on), the fixture showing its values in both. `back()` goes back to `page` after it was left, and
 * tells whether it was restored from the cache (not reloaded), with Chromium's reasons when not.
 */
async function twoCachedTabs(bf: Browser, url: string) {
  const ctx = await bf.newContext()
  await ctx.addInitScript(() => addEventListener('pageshow', (e) => ((window as unknown as { restored: boolean }).restored = e.persisted)))
  const page = await ctx.newPage()
  const cdp = await ctx.newCDPSession(page)
  await cdp.send('Page.enable')
  const notRestored: unknown[] = []
  cdp.on('Page.backForwardCacheNotUsed', (e) => notRestored.push(e.notRestoredExplanations))
  await page.goto(url)
  await waitShown(page, String(sw.current), 15_000)
  const other = await ctx.newPage()
  await other.goto(url)
  await waitShown(other, String(sw.current), 15_000)
  const back = async () => {
    await page.goBack({ waitUntil: 'commit' })
    await page.waitForFunction(() => (window as unknown as { restored?: boolean }).restored !== undefined)
    return { restored: await page.evaluate(() => (window as unknown as { restored: boolean }).restored), why: JSON.stringify(notRestored) }
  }
  return { page, other, back }
}

describe('two tabs sending events, one of them going into the back/forward cache mid-flush', () => {
  test('the other tab sends at once, the cached page is restored (not evicted for the lock it held), and every event arrives', async () => {
    const bf = await launchChromium({ backForwardCache: true })
    const proxy = await startRecordingProxy(server.url)
    try {
      // Slow: the pass the page runs when it leaves still waits for its answer when it is frozen.
      proxy.delayMs = 1500
      const run = randomUUID()
      const { page, other, back } = await twoCachedTabs(bf, eventsUrl(proxy))
      await page.evaluate(async (run) => {
        for (let n = 0; n < 25; n++) window.holdfast.logEvent('before-leaving', { metadata: { run, n } })
        await new Promise((r) => setTimeout(r, 300))
      }, run)
      await page.goto(`${fixture.url}/away.txt`)
      await new Promise((r) => setTimeout(r, 200))
      const started = Date.now()
      await other.evaluate(async (run) => {
        for (let n = 100; n < 105; n++) window.holdfast.logEvent('other-tab', { metadata: { run, n } })
        await window.holdfast.flush()
      }, run)
      const flushMs = Date.now() - started
      const { restored, why } = await back()
      expect(restored, why).toBe(true)
      // Shown again, it sends for itself again (the other tab does not flush now: the test would not tell).
      await page.evaluate(async (run) => {
        for (let n = 200; n < 203; n++) window.holdfast.logEvent('after-restore', { metadata: { run, n } })
        await window.holdfast.flush()
      }, run)
      const times = new Map<number, number>()
      for (const r of proxy.requests)
        for (const e of (r.body as { events?: Array<{ metadata?: { run?: string; n?: number } }> })?.events ?? [])
          if (e.metadata?.run === run && r.status === 202) times.set(e.metadata.n!, (times.get(e.metadata.n!) ?? 0) + 1)
      expect(times.size).toBe(33)
      // The cached page's requests already out still land; the other tab may send those events again.
      expect([...times.values()].filter((t) => t > 1).length).toBeLessThanOrEqual(25)
      // The other tab's flush was not held up by a lock the frozen page kept (requests take 1.5 s).
      expect(flushMs).toBeLessThan(6 * 1500)
    } finally {
      await proxy.close()
      await bf.close()
    }
  })
})

describe('an event the app logs as the page goes into the back/forward cache', () => {
  // Analytics code logs a "page left" event in its own `pagehide` (or `visibilitychange`) handler.
  // The queue writes it to IndexedDB a moment later, as the page is being frozen: the write must be
  // done by then, or the frozen page keeps its transaction open until it is restored, another tab's
  // write waits on it, and Chromium drops the cached page (IgnoreEventAndEvict) with the write
  // undone: the event is gone, and going back reloads the page.
  test.each(['pagehide', 'visibilitychange'])('logged in %s: another tab sends it while the page is away, and the page is restored (not reloaded)', async (type) => {
    const bf = await launchChromium({ backForwardCache: true })
    const proxy = await startRecordingProxy(server.url)
    try {
      const run = randomUUID()
      const { page, other, back } = await twoCachedTabs(bf, eventsUrl(proxy))
      await page.evaluate(
        ({ run, type }) =>
          (type === 'pagehide' ? window : document).addEventListener(type, () => (type === 'pagehide' || document.visibilityState === 'hidden') && window.holdfast.logEvent('page-left', { metadata: { run, n: 0 } })),
        { run, type },
      )
      await page.goto(`${fixture.url}/away.txt`)
      await new Promise((r) => setTimeout(r, 300))
      // The other tab's own work: it logs and sends its events (the shared queue, the page's included).
      await other.evaluate(async (run) => {
        window.holdfast.logEvent('other-tab', { metadata: { run, n: 1 } })
        await window.holdfast.flush()
      }, run)
      const accepted = (n: number) => proxy.requests.filter((r) => r.status === 202).flatMap((r) => (r.body as { events: Array<{ metadata?: { run?: string; n?: number } }> }).events).filter((e) => e.metadata?.run === run && e.metadata.n === n).length
      expect(accepted(1)).toBe(1)
      // Sent by the tab still open: the user may never come back.
      expect(accepted(0), 'the page-left event, sent by the open tab').toBe(1)
      const { restored, why } = await back()
      expect(restored, why).toBe(true)
      // Restored, the page does not send it again.
      await page.evaluate(() => window.holdfast.flush())
      expect(accepted(0)).toBe(1)
      expect(await page.evaluate(() => window.holdfast.getEventStats().queued)).toBe(0)
    } finally {
      await proxy.close()
      await bf.close()
    }
  })
})

describe('a page going into the back/forward cache while another tab of the origin logs events', () => {
  // The pass a page's `pagehide` triggers listed the queue in IndexedDB before the page let its lock
  // go (its listener ran first). With the other tab writing its events, that read waited behind a
  // write, the page was frozen before it was answered, and the next write waited on the frozen
  // page's transaction: Chromium evicted the page (IgnoreEventAndEvict), going back reloaded it.
  test('restored (not reloaded), and both tabs\' events all arrive', async () => {
    const bf = await launchChromium({ backForwardCache: true })
    const proxy = await startRecordingProxy(server.url)
    try {
      const run = randomUUID()
      const { page, other, back } = await twoCachedTabs(bf, eventsUrl(proxy))
      await page.evaluate((run) => window.holdfast.logEvent('before-leaving', { metadata: { run, n: 0 } }), run)
      // An app logging fast (20 events every 5 ms), each task's events written as it ends.
      await other.evaluate((run) => {
        let n = 1
        const w = window as unknown as { logging: ReturnType<typeof setInterval>; logged: number }
        w.logging = setInterval(() => {
          for (let i = 0; i < 20; i++) window.holdfast.logEvent('other-tab', { metadata: { run, n: n++, page: 'x'.repeat(500) } })
          w.logged = n
        }, 5)
      }, run)
      await new Promise((r) => setTimeout(r, 300))
      await page.goto(`${fixture.url}/away.txt`)
      await new Promise((r) => setTimeout(r, 1000))
      const logged = await other.evaluate(() => {
        const w = window as unknown as { logging: ReturnType<typeof setInterval>; logged: number }
        clearInterval(w.logging)
        return w.logged
      })
      const { restored, why } = await back()
      expect(restored, why).toBe(true)
      await other.evaluate(() => window.holdfast.flush())
      await page.evaluate(() => window.holdfast.flush())
      const accepted = new Set(proxy.requests.filter((r) => r.status === 202).flatMap((r) => (r.body as { events: Array<{ metadata?: { run?: string; n?: number } }> }).events).filter((e) => e.metadata?.run === run).map((e) => e.metadata!.n))
      expect(accepted.size).toBe(logged)
    } finally {
      await proxy.close()
      await bf.close()
    }
  })
})

describe('a flag answer whose cache write waits on another tab as the page goes into the back/forward cache', () => {
  // The cache's write reads the entry and writes it in one IndexedDB transaction (cache.ts), and
  // the write can be asked for only once the read answered. Another tab of the origin is writing
  // (a large batch of events) when an answer lands: the page's transaction waits behind it, and
  // the page is frozen before its read is answered. Frozen, it never asks for the write: its
  // transaction stays open, the other tab's next write waits on it, and Chromium drops the cached
  // page (IgnoreEventAndEvict), the value never saved.
  test('restored (not reloaded), and the value the answer brought is saved', async () => {
    const bf = await launchChromium({ backForwardCache: true })
    try {
      const { page, other, back } = await twoCachedTabs(bf, `${fixture.url}/?${new URLSearchParams({ flags: server.url, events: 'off' })}`)
      // The other tab leaves Holdfast (its page is plain, of the same origin): only this page writes the entry.
      await other.goto(`${fixture.url}/away.txt`)
      await other.evaluate(
        () =>
          new Promise<void>((started) => {
            const open = indexedDB.open('holdfast')
            open.onsuccess = () => {
              const tx = open.result.transaction('keyval', 'readwrite')
              const store = tx.objectStore('keyval')
              const end = Date.now() + 4000
              const again = () => void (Date.now() < end && (store.put(Date.now(), 'other-tab').onsuccess = again))
              again()
              ;(window as unknown as { busy: Promise<void> }).busy = new Promise((done) => (tx.oncomplete = () => (open.result.close(), done())))
              started()
            }
          }),
      )
      const value = await flip()
      await waitShown(page, String(value), 3500)
      await page.goto(`${fixture.url}/away.txt`)
      // The other tab's long write ends; then it writes again.
      const saved = await other.evaluate(async (key) => {
        await (window as unknown as { busy: Promise<void> }).busy
        await new Promise((r) => setTimeout(r, 300))
        const open = indexedDB.open('holdfast')
        const db = await new Promise<IDBDatabase>((done) => (open.onsuccess = () => done(open.result)))
        const tx = db.transaction('keyval', 'readwrite')
        tx.objectStore('keyval').put(1, 'other-tab')
        await new Promise((done) => (tx.oncomplete = done))
        await new Promise((r) => setTimeout(r, 500))
        const read = db.transaction('keyval').objectStore('keyval')
        const keys = await new Promise<IDBValidKey[]>((done) => (read.getAllKeys().onsuccess = (e) => done((e.target as IDBRequest<IDBValidKey[]>).result)))
        const entries = await Promise.all(
          keys.filter((k) => String(k).startsWith('holdfast:flags:')).map((k) => new Promise<{ flags: Array<{ key: string; value: unknown }> }>((done) => (read.get(k).onsuccess = (e) => done((e.target as IDBRequest).result)))),
        )
        db.close()
        return entries.flatMap((e) => e.flags.filter((f) => f.key === key).map((f) => f.value))
      }, KEY)
      const { restored, why } = await back()
      expect({ saved, restored }, why).toEqual({ saved: [value === 'true'], restored: true })
    } finally {
      await bf.close()
    }
  })
})
