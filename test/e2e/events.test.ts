// Scenarios 4 and 5: events in a real browser. Event requests go through a recording proxy, so
// the test sees what the browser actually sent, not only what the receiver kept after its
// de-duplication by id (which would hide a double send).
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { openFixture, waitForStatus } from './support/fixturePage'
import { startRecordingProxy, waitFor, type RecordingProxy } from './support/servers'
import { useFixtureSuite } from './support/suite'

const e2e = useFixtureSuite()
let proxy: RecordingProxy

beforeAll(async () => {
  proxy = await startRecordingProxy(e2e.flags.url)
})
afterAll(async () => {
  await proxy?.close()
})
beforeEach(() => {
  proxy.requests.length = 0
})

interface SentEvent {
  id: string
  name: string
  metadata?: { run?: string; tab?: string; n?: number }
}

/** This run's events as the receiver stored them (the events file). */
async function storedEvents(run: string): Promise<SentEvent[]> {
  return ((await e2e.flags.readEvents()) as unknown as SentEvent[]).filter((e) => e.metadata?.run === run)
}

/** How often each of this run's event ids was sent, over every request the browser made. */
function timesSent(run: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const request of proxy.requests) {
    const events = (request.body as { events?: SentEvent[] })?.events ?? []
    for (const event of events) if (event.metadata?.run === run) counts.set(event.id, (counts.get(event.id) ?? 0) + 1)
  }
  return counts
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

describe('events logged offline', () => {
  test('survive leaving the page while offline, and the next page delivers each exactly once', async () => {
    const N = 25
    const run = randomUUID()
    // A flush interval far beyond the test: nothing is sent on a timer.
    const params = { flags: e2e.flags.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '600000', exposures: '0' }
    const page = await openFixture(e2e.context, e2e.fixture.url, params)
    await waitForStatus(page, 'ready', 'network')

    await e2e.context.setOffline(true)
    expect(await page.evaluate(() => navigator.onLine)).toBe(false)
    await page.evaluate(
      ({ run, N }) => {
        for (let n = 0; n < N; n++) window.holdfast.logEvent('offline-purchase', { value: n, metadata: { run, n } })
      },
      { run, N },
    )
    // An explicit flush while offline sends nothing and loses nothing.
    await page.evaluate(() => window.holdfast.flush())
    expect((await page.evaluate(() => window.holdfast.getEventStats())).queued).toBe(N)
    // CONTRACT §6: persisted within 100 ms of being logged.
    await page.waitForTimeout(300)

    // Leave the page while still offline: whatever the unloading page tries (pagehide, keepalive)
    // cannot get out, so only what IndexedDB kept can reach the server later.
    await page.goto('about:blank')
    expect(proxy.requests, 'nothing may get through while offline').toHaveLength(0)
    expect(await storedEvents(run)).toHaveLength(0)

    await e2e.context.setOffline(false)
    const backOnline = Date.now()
    await page.goto(e2e.fixture.url + '/?' + new URLSearchParams(params).toString()) // same tab, same origin, a new client
    const stored = await waitFor(async () => {
      const events = await storedEvents(run)
      return events.length >= N ? events : undefined
    }, `the reloaded page should deliver the ${N} events logged offline`)
    // The new page sent them on its own (no flush called), and it is the only one that could have.
    // The receiver stores a batch before its 202 reaches the page: the page's count follows.
    await waitFor(async () => (await page.evaluate(() => window.holdfast.getEventStats())).queued === 0, 'the page should count its events sent once the 202 arrives')
    expect(proxy.requests.every((r) => r.at >= backOnline)).toBe(true)

    // Give a late duplicate (a second flush of the same events) the chance to show up.
    await page.evaluate(() => window.holdfast.flush())
    await page.waitForTimeout(500)
    const final = await storedEvents(run)
    expect(final).toHaveLength(N)
    expect([...countBy(final, (e) => String(e.metadata?.n)).values()]).toEqual(Array(N).fill(1))
    expect(new Set(final.map((e) => e.id)).size).toBe(N)
    expect(stored.map((e) => e.id).sort()).toEqual(final.map((e) => e.id).sort())
    // Before de-duplication: every id went over the wire once, and was accepted on that request.
    const sent = timesSent(run)
    expect(sent.size).toBe(N)
    expect([...sent.values()]).toEqual(Array(N).fill(1))
    for (const request of proxy.requests) {
      expect(request.status).toBe(202)
      expect((request.response as { duplicates?: number }).duplicates).toBe(0)
    }
  })
})

/** A fixture page, ready from the network, that has logged `N` events named `name` (metadata `{ run, n }`). */
async function readyPageWithEvents(params: Record<string, string>, name: string, run: string, N: number) {
  const page = await openFixture(e2e.context, e2e.fixture.url, params)
  await waitForStatus(page, 'ready', 'network')
  await page.evaluate(
    ({ name, run, N }) => {
      for (let n = 0; n < N; n++) window.holdfast.logEvent(name, { metadata: { run, n } })
    },
    { name, run, N },
  )
  return page
}

describe('a page left for good', () => {
  // CONTRACT §6: batches flush when the page is hidden (fetch with keepalive). A page being
  // unloaded runs no more storage callbacks, lock grants or timers: a pass that lists IndexedDB and
  // takes the Web Lock before its request never sent anything, and a user who closed the tab and
  // never came back left every event of it in IndexedDB for good (0 requests before the fix).
  for (const how of ['navigated away (no back/forward cache)', 'tab closed'] as const)
    test(`${how}: the events it queued reach the receiver on the way out, each once`, async () => {
      const N = 5
      const run = randomUUID()
      const params = { flags: e2e.flags.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '600000', exposures: '0' }
      const page = await readyPageWithEvents(params, 'last-click', run, N)
      await page.waitForTimeout(300)
      expect(proxy.requests).toHaveLength(0)
      if (how === 'tab closed') await page.close({ runBeforeUnload: true })
      else await page.goto('about:blank')
      const stored = await waitFor(async () => {
        const events = await storedEvents(run)
        return events.length >= N ? events : undefined
      }, `the ${N} events of the page that was left`)
      expect(stored.map((e) => e.metadata?.n).sort()).toEqual([0, 1, 2, 3, 4])
      // The proxy records a request once the receiver answered it.
      await waitFor(() => timesSent(run).size === N || undefined, 'the request recorded')
      expect([...timesSent(run).values()]).toEqual(Array(N).fill(1))
    })
})

describe('a wrong events URL', () => {
  // A 404 from the events URL says the URL is wrong, not the events: they stay queued (and in
  // IndexedDB), the stats say why they wait, and a page with the right URL sends every one, once.
  // That right URL is built the way apps build it, `base/` + `/holdfast/v1/events`: the double
  // slash must not turn it into another 404.
  test('404 keeps the events and says why; the next page, with `base/` + `/path`, sends each once', async () => {
    const N = 4
    const run = randomUUID()
    const wrong = { flags: e2e.flags.url, events: `${proxy.url}/holdfast/v1/evnets`, flushMs: '600000', exposures: '0' }
    const page = await readyPageWithEvents(wrong, 'misrouted', run, N)
    await page.evaluate(() => window.holdfast.flush())
    const stats = await page.evaluate(() => window.holdfast.getEventStats())
    expect(stats).toMatchObject({ queued: N, sent: 0, dropped: 0 })
    // The reference server answers CORS preflights on its own paths only, so for a cross-origin page
    // a wrong path fails at the preflight: the browser shows the page a network error, never the 404
    // (the Node suite sees the 404 itself). Either way the events stay and the reason is on show.
    expect(stats.lastError).toMatchObject({ code: 'NETWORK' })
    expect(proxy.requests).toEqual([]) // the preflight failed: no POST went out
    expect(await storedEvents(run)).toHaveLength(0)
    await page.waitForTimeout(300) // in IndexedDB within 100 ms of being logged

    const right = { ...wrong, events: `${proxy.url}/` + '/holdfast/v1/events' }
    await page.goto(e2e.fixture.url + '/?' + new URLSearchParams(right).toString())
    await waitFor(async () => ((await storedEvents(run)).length >= N ? true : undefined), `the next page should deliver the ${N} kept events`)
    await page.evaluate(() => window.holdfast.flush())
    await page.waitForTimeout(300)
    const final = await storedEvents(run)
    expect(final.map((e) => e.metadata?.n).sort()).toEqual([0, 1, 2, 3])
    expect([...timesSent(run).values()]).toEqual([1, 1, 1, 1]) // the wrong URL never got a POST; the right one got each once
    const accepted = proxy.requests.filter((r) => r.status === 202)
    expect(accepted.length).toBeGreaterThan(0)
    expect(accepted.every((r) => r.path === '/holdfast/v1/events')).toBe(true)
    const after = await page.evaluate(() => window.holdfast.getEventStats())
    expect(after).toMatchObject({ queued: 0, sent: N, dropped: 0 })
    expect(after.lastError).toBeUndefined()
  })
})

describe('events IndexedDB cannot clone', () => {
  // Structured clone refuses functions and DOM nodes. Handed over by a JavaScript caller, such an
  // event must not push the page's storage onto memory (where a reload would lose the queue): it is
  // kept as plain JSON, and the events around it are untouched.
  test('a function or a DOM node in an event leaves the page on IndexedDB and every event is sent', async () => {
    const run = randomUUID()
    const params = { flags: e2e.flags.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '600000', exposures: '0' }
    const page = await openFixture(e2e.context, e2e.fixture.url, params)
    await waitForStatus(page, 'ready', 'network')
    await page.evaluate((run) => {
      const log = window.holdfast.logEvent as (name: string, options: unknown) => void
      log('plain-1', { metadata: { run } })
      log('odd', { value: () => 1, metadata: { run, handler: () => 2, node: document.body, plan: 'pro' } })
      log('node', { value: document.body, metadata: { run } })
      log('plain-2', { metadata: { run } })
    }, run)
    await page.waitForTimeout(300) // written (or not) by now
    expect(await page.evaluate(() => window.holdfast.getStatus().storage)).toBe('indexeddb')
    await page.evaluate(() => window.holdfast.flush())
    const stored = await storedEvents(run)
    expect(stored.map((e) => e.name)).toEqual(['plain-1', 'odd', 'node', 'plain-2'])
    expect(stored[1].metadata).toEqual({ run, plan: 'pro' })
    expect(await page.evaluate(() => window.holdfast.getEventStats())).toMatchObject({ queued: 0, sent: 4, dropped: 0 })
    expect(await page.evaluate(() => window.holdfast.getStatus().storage)).toBe('indexeddb')
  })
})

describe('the event pipeline chunk', () => {
  // The pipeline is a chunk loaded on demand. When it cannot be fetched (a deploy removed it, a
  // flaky network), the flags are unaffected and the stand-in still writes every event to
  // IndexedDB, so a later page that can load the chunk sends them, each once.
  test('unreachable: flags still work, events are kept in IndexedDB, and the next page sends each once', async () => {
    const N = 5
    const run = randomUUID()
    const params = { flags: e2e.flags.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '600000', exposures: '0' }
    const blocked: string[] = []
    const chunk = /\/assets\/delivery-[^/]*\.js$/
    await e2e.context.route(chunk, (route) => {
      blocked.push(route.request().url())
      return route.abort('failed')
    })

    const page = await openFixture(e2e.context, e2e.fixture.url, params)
    await waitForStatus(page, 'ready', 'network')
    await page.evaluate(
      ({ run, N }) => {
        for (let n = 0; n < N; n++) window.holdfast.logEvent('chunkless', { metadata: { run, n } })
      },
      { run, N },
    )
    // Nothing can be sent; during the failed load's backoff flush() does not ask for the chunk again (its timer does).
    await page.evaluate(() => window.holdfast.flush())
    expect(blocked.length, 'the page must have asked for the pipeline chunk').toBeGreaterThanOrEqual(1)
    expect((await page.evaluate(() => window.holdfast.getEventStats())).queued).toBe(N)
    // CONTRACT §6: persisted within 100 ms of being logged, chunk or no chunk.
    await page.waitForTimeout(300)
    await page.goto('about:blank')
    expect(proxy.requests).toHaveLength(0)

    await e2e.context.unroute(chunk)
    await page.goto(e2e.fixture.url + '/?' + new URLSearchParams(params).toString())
    await waitFor(async () => ((await storedEvents(run)).length >= N ? true : undefined), `the next page should deliver the ${N} events`)
    await page.evaluate(() => window.holdfast.flush())
    await page.waitForTimeout(300)
    const final = await storedEvents(run)
    expect(final.map((e) => e.metadata?.n).sort()).toEqual([0, 1, 2, 3, 4])
    expect([...timesSent(run).values()]).toEqual(Array(N).fill(1))
  })
})

describe('the event pipeline chunk, answering 404 once', () => {
  // A CDN's 404 (or a deploy that removed the chunk for a moment, or offline at first use): before,
  // getEventStats() said only `queued`, the why was in the console alone, and nothing asked for the
  // chunk again until the app flushed or the page was hidden.
  test('the stats say why nothing is sent, and the page asks again on its own and sends the events', async () => {
    const N = 3
    const run = randomUUID()
    const params = { flags: e2e.flags.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '1000', exposures: '0' }
    const asked: number[] = []
    let release = () => {}
    const seen = new Promise<void>((resolve) => (release = resolve))
    const chunk = /\/assets\/delivery-[^/]*\.js$/
    // 404 the first time; the next answer waits until the test has read the stats.
    await e2e.context.route(chunk, async (route) => {
      asked.push(Date.now())
      if (asked.length === 1) return route.fulfill({ status: 404, body: 'gone' })
      await seen
      return route.continue()
    })
    const page = await openFixture(e2e.context, e2e.fixture.url, params)
    await waitForStatus(page, 'ready', 'network')
    await page.evaluate(
      ({ run, N }) => {
        for (let n = 0; n < N; n++) window.holdfast.logEvent('after-404', { metadata: { run, n } })
      },
      { run, N },
    )
    await page.waitForFunction(() => window.holdfast.getEventStats().lastError?.code === 'NETWORK', undefined, { timeout: 5000 })
    expect(await page.evaluate(() => window.holdfast.getEventStats())).toMatchObject({ queued: N, sent: 0 })
    release()
    // No app call, no hidden page: the chunk is asked for again after the backoff (1 s at most), and
    // the events go on the interval.
    await waitFor(async () => ((await storedEvents(run)).length >= N ? true : undefined), `the ${N} events sent after the chunk came`)
    expect(asked.length).toBe(2)
    expect(asked[1] - asked[0]).toBeGreaterThanOrEqual(400)
    // The server stores the events before its 202 reaches the page: the page counts them once it reads the answer.
    await page.waitForFunction((N) => window.holdfast.getEventStats().sent === N, N, { timeout: 5000 })
    expect(await page.evaluate(() => window.holdfast.getEventStats())).toMatchObject({ queued: 0, sent: N })
    expect((await page.evaluate(() => window.holdfast.getEventStats())).lastError).toBeUndefined()
    await e2e.context.unroute(chunk)
  })
})

describe('two tabs of one origin', () => {
  test('logging and flushing at once: every event arrives, and none is sent twice', async () => {
    const N = 60
    const run = randomUUID()
    // Small batches and a short interval: automatic flushes of both tabs overlap with explicit ones.
    const params = { flags: e2e.flags.url, events: `${proxy.url}/holdfast/v1/events`, flushMs: '250', batch: '5', exposures: '0' }
    const tabs = [await openFixture(e2e.context, e2e.fixture.url, params), await openFixture(e2e.context, e2e.fixture.url, params)]
    await Promise.all(tabs.map((tab) => waitForStatus(tab, 'ready', 'network')))

    await Promise.all(
      tabs.map((tab, i) =>
        tab.evaluate(
          async ({ run, tab, N }) => {
            const flushes: Promise<void>[] = []
            for (let n = 0; n < N; n++) {
              window.holdfast.logEvent('tab-event', { metadata: { run, tab, n } })
              if (n % 7 === 0) await new Promise((r) => setTimeout(r, 3))
              if (n % 10 === 9) flushes.push(window.holdfast.flush())
            }
            flushes.push(window.holdfast.flush())
            await Promise.all(flushes)
          },
          { run, tab: `tab-${i}`, N },
        ),
      ),
    )

    await waitFor(async () => (await storedEvents(run)).length >= 2 * N, `both tabs' ${2 * N} events should arrive`, 20_000)
    await waitFor(
      async () => (await Promise.all(tabs.map((tab) => tab.evaluate(() => window.holdfast.getEventStats().queued)))).every((q) => q === 0),
      'both tabs should see an empty queue',
    )
    // Let any straggler (a second tab re-sending what the first already sent) arrive before counting.
    await Promise.all(tabs.map((tab) => tab.evaluate(() => window.holdfast.flush())))
    await tabs[0].waitForTimeout(1000)

    const stored = await storedEvents(run)
    expect(stored).toHaveLength(2 * N)
    const perEvent = countBy(stored, (e) => `${e.metadata?.tab}#${e.metadata?.n}`)
    expect(perEvent.size).toBe(2 * N)
    expect([...perEvent.values()].every((c) => c === 1)).toBe(true)

    // What proves "none duplicated": before the receiver's de-duplication, each id was in exactly
    // one request, and the receiver never had to drop a duplicate.
    const sent = timesSent(run)
    expect(sent.size).toBe(2 * N)
    const twice = [...sent].filter(([, times]) => times > 1)
    expect(twice, 'event ids sent more than once').toEqual([])
    const duplicates = proxy.requests.reduce((sum, r) => sum + ((r.response as { duplicates?: number }).duplicates ?? 0), 0)
    expect(duplicates).toBe(0)
    expect(proxy.requests.every((r) => r.status === 202)).toBe(true)
  })
})
