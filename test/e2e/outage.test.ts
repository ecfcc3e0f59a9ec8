// Scenarios 2 and 3: a real browser, a real IndexedDB, the reference flag server breaking in the
// ways real outages do. What the user sees must not change; only the status says "stale".
import { describe, expect, test } from 'vitest'
import { expectAdaValues, openFixture, readShown, waitForCachedFlags, waitForStatus } from './support/fixturePage'
import { useFixtureSuite } from './support/suite'

const e2e = useFixtureSuite()

const params = () => ({ flags: e2e.flags.url, events: 'off' })

describe('a reload during an outage', () => {
  test('while the flag server answers 503, the reloaded page shows the values cached in IndexedDB, as stale', async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, params())
    const online = await waitForStatus(page, 'ready', 'network')
    expectAdaValues(online)
    expect(Object.values(online.sources)).toEqual(['network', 'network', 'network', 'network'])
    await waitForCachedFlags(page)

    await e2e.flags.setOutage('503')
    await page.reload()
    const during = await waitForStatus(page, 'stale')

    expect(during.values).toEqual(online.values)
    expect(Object.values(during.sources)).toEqual(['cache', 'cache', 'cache', 'cache'])
    expect(Object.values(during.stale)).toEqual([true, true, true, true])
    expect(during.statusSource).toBe('cache')
    expect(during.error).toBe('HTTP')
    expect(during.http).toBe('503')
  })
})

describe('a flag server that answers 200 with nothing usable', () => {
  const cases = [
    { mode: 'empty', what: '{}', code: 'INVALID_RESPONSE' },
    { mode: 'empty-flags', what: '{"flags": []}', code: 'EMPTY_RESPONSE' },
    { mode: 'html', what: 'an HTML page', code: 'INVALID_RESPONSE' },
  ] as const

  test.each(cases)('$what: the values stay, the status turns stale with $code, also after a reload', async ({ mode, code }) => {
    const page = await openFixture(e2e.context, e2e.fixture.url, params())
    const before = await waitForStatus(page, 'ready', 'network')
    expectAdaValues(before)
    await waitForCachedFlags(page)

    await e2e.flags.setOutage(mode)
    const status = await page.evaluate(() => window.holdfast.refresh())
    expect(status.state).toBe('stale')
    expect(status.error?.code).toBe(code)

    const after = await waitForStatus(page, 'stale')
    expect(after.values).toEqual(before.values) // the kill switch is still on
    expect(after.sources).toEqual(before.sources) // a failure does not pretend the values came from elsewhere
    expect(Object.values(after.stale)).toEqual([true, true, true, true])
    expect(after.error).toBe(code)

    await page.reload()
    const reloaded = await waitForStatus(page, 'stale')
    expect(reloaded.values).toEqual(before.values)
    expect(Object.values(reloaded.sources)).toEqual(['cache', 'cache', 'cache', 'cache'])
    expect(reloaded.error).toBe(code)
  })
})

describe('a returning user on a page with a build-time fallback (issue 12 item 2)', () => {
  /** Records every DOM state from the first one, before any script of the page runs. */
  async function recordFromStart(page: import('playwright-core').Page) {
    await page.addInitScript(() => {
      const frames: { banner: string; source: string; state: string; holding: boolean }[] = []
      ;(window as unknown as { frames_: typeof frames }).frames_ = frames
      const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() ?? ''
      const record = () =>
        frames.push({ banner: text('flag-banner-config-value'), source: text('flag-banner-config-source'), state: text('status-state'), holding: !!document.querySelector('[data-testid="holding"]') })
      new MutationObserver(record).observe(document, { subtree: true, childList: true, characterData: true })
    })
    return () => page.evaluate(() => (window as unknown as { frames_: { banner: string; source: string; state: string; holding: boolean }[] }).frames_)
  }

  test('fallback values never show as ready; with <FlagsReady> the cached values come first, no fallback flash', async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, { ...params(), fallback: '1' })
    const online = await waitForStatus(page, 'ready', 'network')
    expectAdaValues(online)
    await waitForCachedFlags(page)
    await e2e.flags.setOutage('hang') // the network never answers: only cache and fallback are left

    // Without the hold: whatever the first frames show, a fallback value is never "ready" or fresh.
    const plain = await recordFromStart(page)
    await page.reload()
    await page.waitForFunction(() => document.querySelector('[data-testid="status-source"]')?.textContent === 'cache')
    const plainFrames = await plain()
    expect(plainFrames.filter((f) => f.source === 'fallback' && f.state === 'ready')).toEqual([])

    // With the hold: the page waits (at most 1 s) for the cache, and never shows the fallback.
    const held = await openFixture(e2e.context, e2e.fixture.url, { ...params(), fallback: '1', hold: '1000' })
    const heldFrames = await recordFromStart(held)
    await held.reload()
    await held.waitForFunction(() => document.querySelector('[data-testid="flag-banner-config-source"]')?.textContent === 'cache')
    const seen = await heldFrames()
    expect(seen.some((f) => f.banner === 'FALLBACK BANNER')).toBe(false)
    expect(seen.find((f) => f.banner !== '')?.banner).toBe(online.values['banner-config'])
    await e2e.flags.setOutage('none')
  })

  test('no exposure is logged for a fallback value shown while the cache is read', async () => {
    const withEvents = { flags: e2e.flags.url, fallback: '1', user: 'fallback-reader' } // events on, to the flag server
    const page = await openFixture(e2e.context, e2e.fixture.url, withEvents)
    await waitForStatus(page, 'ready', 'network')
    await waitForCachedFlags(page)
    // The first visit found no cache: its fallback values were shown, not standing in for anything,
    // while the first answer was out, and count as seen (CONTRACT §6). Only the reload is checked.
    await page.evaluate(() => window.holdfast.flush())
    const before = new Set((await e2e.flags.readEvents()).map((e) => e.id))
    await e2e.flags.setOutage('hang')
    await page.reload()
    await page.waitForFunction(() => document.querySelector('[data-testid="status-source"]')?.textContent === 'cache')
    await page.evaluate(() => window.holdfast.flush())
    const exposures = (await e2e.flags.readEvents()).filter((e) => !before.has(e.id) && e.type === 'exposure' && e.targetingKey === 'fallback-reader')
    expect(exposures.length).toBeGreaterThan(0) // the cache's values were exposed
    expect(exposures.every((e) => e.source === 'cache')).toBe(true)
    await e2e.flags.setOutage('none')
  })
})
