// Scenario 1: examples/nextjs, built and started like production. The server renders the user's
// flags into the HTML (fetchBootstrap + <FlagProvider bootstrap>), hydration changes nothing, and
// a flag server that is slow or gone costs at most the bootstrap timeout, never the page.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { launchChromium, recordConsole, type ConsoleLog } from './support/browser'
import { waitForCachedFlags } from './support/fixturePage'
import { buildNextApp, lockNextBuild, startNextApp, type NextServer } from './support/nextApp'
import { startFlagServer, type TestFlagServer } from './support/servers'

const FLAGS_FILE = new URL('../../examples/flags.json', import.meta.url).pathname
const SERVED_BANNER = 'Welcome to the Holdfast demo shop' // banner-config from examples/flags.json
const DEFAULT_BANNER = 'Welcome!' // examples/nextjs/app/Shop.tsx
const BETA = 'Beta dashboard'

let browser: Browser
let flags: TestFlagServer
let next: NextServer
let unlock: (() => void) | undefined

beforeAll(async () => {
  browser = await launchChromium() // first: without a browser there is no point building
  unlock = await lockNextBuild()
  flags = await startFlagServer(FLAGS_FILE)
  await buildNextApp() // ~30 s on two cores
  next = await startNextApp({ HOLDFAST_URL: flags.url })
})
afterAll(async () => {
  await Promise.all([browser?.close(), next?.close(), flags?.close()])
  unlock?.()
})

/** The HTML the Next.js server sends for `user`, as plain node fetch sees it (no JavaScript). */
async function rawHtml(user: string): Promise<{ html: string; ms: number; status: number }> {
  const started = Date.now()
  const res = await fetch(`${next.url}/`, { headers: { Cookie: `holdfast-user=${user}` } })
  const html = await res.text()
  return { html, ms: Date.now() - started, status: res.status }
}

/** The server-rendered markup of the part of the page that the flags drive. */
function shopMarkup(html: string): string {
  const match = /<main data-testid="shop">([\s\S]*?)<\/main>/.exec(html)
  if (!match) throw new Error(`no <main data-testid="shop"> in the HTML:\n${html.slice(0, 2000)}`)
  return match[1]
}

/** Runs `body` on a page of a fresh browser profile whose cookie says `user`, recording its console; closes the profile after. */
async function asUser(user: string, body: (page: Page, log: ConsoleLog) => Promise<void>): Promise<void> {
  const context = await browser.newContext()
  try {
    await context.addCookies([{ name: 'holdfast-user', value: user, url: next.url }])
    const page = await context.newPage()
    await body(page, recordConsole(page))
  } finally {
    await context.close()
  }
}

const text = (page: Page, id: string) => page.getByTestId(id).textContent()

/** React reports a hydration mismatch on the console (production builds: errors #418, #423, #425). */
function hydrationProblems(log: ConsoleLog): string[] {
  return log.all().filter((line) => /hydrat|#418|#423|#425|did not match/i.test(line))
}

describe('Next.js App Router example', () => {
  test("the server's HTML already holds the gated content: the beta dashboard for a pro user, not for a free one", async () => {
    const ada = await rawHtml('ada')
    expect(ada.status).toBe(200)
    expect(shopMarkup(ada.html)).toContain(BETA)
    expect(shopMarkup(ada.html)).toContain(SERVED_BANNER)
    expect(ada.html).toContain('data-testid="flag-beta-dashboard-source">bootstrap<')

    const bob = await rawHtml('bob')
    expect(bob.status).toBe(200)
    expect(shopMarkup(bob.html)).not.toContain(BETA)
    expect(shopMarkup(bob.html)).toContain(SERVED_BANNER)
    expect(bob.html).toContain('data-testid="flag-beta-dashboard-source">bootstrap<')
  })

  test('after hydration and the first fetch the page is exactly what the server sent, with no console warning or error', async () => {
    await asUser('ada', async (page, log) => {
      const response = await page.goto(next.url, { waitUntil: 'networkidle' })
      const served = shopMarkup(await response!.text())
      // Hydrated, started, and confirmed by the flag server from the browser.
      await page.waitForFunction(() => document.querySelector('[data-testid="status-source"]')?.textContent === 'network')
      await page.waitForLoadState('networkidle')

      expect(await page.getByTestId('shop').innerHTML()).toBe(served)
      expect(await text(page, 'status-state')).toBe('ready')
      expect(await text(page, 'flag-beta-dashboard-source')).toBe('network')
      // Every error counts; of the warnings, those about hydration (Chromium's own notes, such as
      // an unused preload on a slow machine, say nothing about this page).
      expect([...log.messages.filter((m) => m.type === 'error').map((m) => m.text), ...log.pageErrors]).toEqual([])
      expect(hydrationProblems(log)).toEqual([])
    })
  })

  test('switching the user (a form post that sets the cookie) renders the new user from their own bootstrap', async () => {
    await asUser('ada', async (page, log) => {
      await page.goto(next.url)
      await expect.poll(() => page.getByTestId('beta-dashboard').count()).toBe(1)
      await page.getByTestId('switch-bob').click()
      await expect.poll(() => text(page, 'current-user')).toBe('Bob (free plan)')
      await page.waitForLoadState('networkidle')
      expect(page.url()).toBe(next.url + '/')
      expect(await page.getByTestId('beta-dashboard').count()).toBe(0)
      expect(await text(page, 'banner')).toBe(SERVED_BANNER)
      expect(hydrationProblems(log)).toEqual([])
    })
  })

  test('with the flag server hanging, the page arrives within the bootstrap timeout and the browser shows its cached values', async () => {
    try {
      await asUser('ada', async (page, log) => {
        // A first visit while all is well fills this browser's cache.
        await page.goto(next.url, { waitUntil: 'networkidle' })
        await waitForCachedFlags(page)

        await flags.setOutage('hang')
        const raw = await rawHtml('ada')
        expect(raw.status).toBe(200)
        expect(raw.ms).toBeLessThan(3000) // the bootstrap gives up after 1000 ms
        expect(shopMarkup(raw.html)).toContain(DEFAULT_BANNER)
        expect(shopMarkup(raw.html)).not.toContain(BETA)

        await page.reload({ waitUntil: 'load' })
        await expect.poll(() => text(page, 'flag-beta-dashboard-source')).toBe('cache')
        expect(await text(page, 'banner')).toBe(SERVED_BANNER)
        expect(await page.getByTestId('beta-dashboard').count()).toBe(1)
        expect(hydrationProblems(log)).toEqual([])
      })
    } finally {
      await flags.setOutage('none')
    }
  })

  // Last: it stops the flag server for good.
  test('with the flag server stopped, the page still renders, and the browser shows its cached values as stale', async () => {
    await asUser('ada', async (page, log) => {
      await page.goto(next.url, { waitUntil: 'networkidle' })
      await waitForCachedFlags(page)

      await flags.close()
      const raw = await rawHtml('ada')
      expect(raw.status).toBe(200)
      expect(shopMarkup(raw.html)).toContain(DEFAULT_BANNER)
      expect(raw.html).toContain('data-testid="status-source">none<')

      await page.reload({ waitUntil: 'load' })
      await expect.poll(() => text(page, 'status-state'), { timeout: 15_000 }).toBe('stale')
      expect(await text(page, 'status-source')).toBe('cache')
      expect(await text(page, 'status-error')).toBe('NETWORK')
      expect(await text(page, 'banner')).toBe(SERVED_BANNER)
      expect(await page.getByTestId('beta-dashboard').count()).toBe(1)
      expect(hydrationProblems(log)).toEqual([])
    })
  })
})
