// The harness most browser suites share: one Chromium, the reference flag server and the built
// fixture page per file, and a fresh browser profile (empty IndexedDB) per test with the outage
// switch off before and after it (`hang` holds requests until it is released).
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import type { Browser, BrowserContext } from 'playwright-core'
import { launchChromium } from './browser'
import { startFixture } from './fixture'
import { fixtureFlags } from './fixturePage'
import { startFlagServer, type Closable, type TestFlagServer } from './servers'

export interface FixtureSuite {
  browser: Browser
  flags: TestFlagServer
  fixture: Closable
  /** This test's browser profile. */
  context: BrowserContext
}

/** Registers the hooks; the fields are set once `beforeAll` / `beforeEach` have run. */
export function useFixtureSuite(): FixtureSuite {
  const suite = {} as FixtureSuite
  beforeAll(async () => {
    suite.browser = await launchChromium() // first: without a browser nothing else is worth starting
    ;[suite.flags, suite.fixture] = await Promise.all([startFlagServer(fixtureFlags()), startFixture()])
  })
  afterAll(async () => {
    await Promise.all([suite.browser?.close(), suite.flags?.close(), suite.fixture?.close()])
  })
  beforeEach(async () => {
    await suite.flags.setOutage('none')
    suite.context = await suite.browser.newContext()
  })
  afterEach(async () => {
    await suite.flags?.setOutage('none')
    await suite.context?.close()
  })
  return suite
}
