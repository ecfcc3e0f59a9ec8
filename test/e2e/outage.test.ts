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
