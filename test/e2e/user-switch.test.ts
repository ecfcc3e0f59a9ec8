// Scenario 6: switching the user. Every state the DOM passes through is recorded by a
// MutationObserver inside the page (it runs before the browser paints), so a flash of defaults
// that lasts a single frame is caught too.
import { describe, expect, test } from 'vitest'
import type { Page } from 'playwright-core'
import { FLAG_KEYS, openFixture, waitForCachedFlags, waitForStatus } from './support/fixturePage'
import { useFixtureSuite } from './support/suite'

const e2e = useFixtureSuite()

const ADA = { targetingKey: 'ada', plan: 'pro', email: 'ada@example.com' }
const BOB = { targetingKey: 'bob', plan: 'free', email: 'bob@other.org' }

interface Frame {
  user: string
  state: string
  values: Record<string, string>
  sources: Record<string, string>
}

/** Starts recording every DOM state of the page; `frames()` returns them, oldest first. */
async function recordFrames(page: Page): Promise<() => Promise<Frame[]>> {
  await page.evaluate((keys) => {
    const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() ?? '(missing)'
    const frames: unknown[] = []
    const record = () =>
      frames.push({
        user: text('current-user'),
        state: text('status-state'),
        values: Object.fromEntries(keys.map((k) => [k, text(`flag-${k}-value`)])),
        sources: Object.fromEntries(keys.map((k) => [k, text(`flag-${k}-source`)])),
      })
    record()
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true })
    ;(window as unknown as { frames_: unknown[] }).frames_ = frames
  }, [...FLAG_KEYS])
  return () => page.evaluate(() => (window as unknown as { frames_: Frame[] }).frames_)
}

/** No frame may show a default: neither the default source nor the page's default banner. */
function expectNoDefaults(frames: Frame[]): void {
  const defaults = frames.filter(
    (f) => Object.values(f.sources).some((s) => s === 'default') || f.values['banner-config'] === 'DEFAULT BANNER',
  )
  expect(defaults, 'frames that showed a default value').toEqual([])
}

const same = (a: Record<string, string>, b: Record<string, string>) => JSON.stringify(a) === JSON.stringify(b)

describe('switching the user', () => {
  test("to a user never seen before: the previous user's values stay (loading) until the new user's arrive; no default ever shows", async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off', ...ADA })
    const ada = await waitForStatus(page, 'ready', 'network')
    // Bob's values are not ada's: otherwise the switch would be invisible.
    expect(ada.values['beta-dashboard']).toBe('true')
    const frames = await recordFrames(page)

    // The flag server holds bob's request, so the in-between state lasts long enough to see.
    await e2e.flags.setOutage('hang')
    await page.evaluate((bob) => window.fixture.switchUser(bob), BOB)
    const between = await waitForStatus(page, 'loading')
    await page.waitForTimeout(500)
    expect(between.values).toEqual(ada.values)

    await e2e.flags.setOutage('none') // bob's held request is answered now
    const bob = await waitForStatus(page, 'ready', 'network')
    expect(bob.values['beta-dashboard']).toBe('false')
    expect(Object.values(bob.sources)).toEqual(['network', 'network', 'network', 'network'])

    const seen = await frames()
    expectNoDefaults(seen)
    // Every frame shows ada's values or bob's, and once bob's appeared, never ada's again.
    expect(seen.every((f) => same(f.values, ada.values) || same(f.values, bob.values))).toBe(true)
    const firstBob = seen.findIndex((f) => same(f.values, bob.values))
    expect(firstBob).toBeGreaterThan(0)
    expect(seen.slice(firstBob).every((f) => same(f.values, bob.values))).toBe(true)
    expect(seen.some((f) => f.user === 'bob' && f.state === 'loading' && same(f.values, ada.values))).toBe(true)
  })

  test("back to a user seen before, while the flag server is down: that user's cached values show at once", async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off', ...ADA })
    const ada = await waitForStatus(page, 'ready', 'network')
    await waitForCachedFlags(page)
    await page.evaluate((bob) => window.fixture.switchUser(bob), BOB)
    await page.waitForFunction(() => document.querySelector('[data-testid="flag-beta-dashboard-value"]')?.textContent === 'false')
    const bob = await waitForStatus(page, 'ready', 'network')
    const frames = await recordFrames(page)

    await e2e.flags.setOutage('503')
    await page.evaluate((ada) => window.fixture.switchUser(ada), ADA)
    const back = await waitForStatus(page, 'stale')
    expect(back.values).toEqual(ada.values)
    expect(Object.values(back.sources)).toEqual(['cache', 'cache', 'cache', 'cache'])
    expect(back.error).toBe('HTTP')

    const seen = await frames()
    expectNoDefaults(seen)
    expect(seen.every((f) => same(f.values, ada.values) || same(f.values, bob.values))).toBe(true)
    const firstAda = seen.findIndex((f) => same(f.values, ada.values))
    expect(seen.slice(firstAda).every((f) => same(f.values, ada.values))).toBe(true)
  })

  test("to a user never seen before, during an outage: once his attempt fails, the previous user's values are gone (fallback, state error)", async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off', fallback: '1', ...ADA })
    const ada = await waitForStatus(page, 'ready', 'network')
    expect(ada.values['beta-dashboard']).toBe('true')
    const frames = await recordFrames(page)

    await e2e.flags.setOutage('503')
    await page.evaluate((bob) => window.fixture.switchUser(bob), BOB)
    const bob = await waitForStatus(page, 'error')
    // Bob is shown the build's fallback (or the page's defaults), never ada's dashboard or shop.
    expect(bob.values['beta-dashboard']).toBe('false')
    expect(bob.values['banner-config']).toBe('FALLBACK BANNER')
    expect(bob.sources['banner-config']).toBe('fallback')
    expect(bob.sources['beta-dashboard']).toBe('fallback')
    expect(bob.sources['checkout-kill-switch']).toBe('default')
    expect(bob.statusSource).toBe('fallback')
    expect(bob.error).toBe('HTTP')
    // No frame ever labels ada's values as anything of bob's once his attempt has finished.
    const seen = await frames()
    const afterError = seen.slice(seen.findIndex((f) => f.user === 'bob' && f.state === 'error'))
    expect(afterError.every((f) => f.values['beta-dashboard'] === 'false')).toBe(true)
  })
})
