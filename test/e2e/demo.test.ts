// Scenario 7: the demo app (examples/react, served by scripts/demo.mjs) as a visitor uses it: it
// loads, and its outage switch does what the page promises — values held and marked stale during
// a 503, cached values after a reload during the outage, and back to ready on recovery.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium } from './support/browser'
import { waitForCachedFlags } from './support/fixturePage'

interface Demo {
  appUrl: string
  flagsUrl: string
  close(): Promise<void>
}

// scripts/demo.mjs is plain JavaScript without declarations; this is the part of it used here.
type StartDemo = (options: { appPort: number; flagsPort: number; buildPackages?: boolean; quiet?: boolean }) => Promise<Demo>
const DEMO_SCRIPT = '../../scripts/demo.mjs'

const KEYS = ['checkout-kill-switch', 'banner-config', 'new-checkout', 'beta-dashboard', 'checkout-button-text', 'free-shipping-threshold']

let browser: Browser
let demo: Demo
let context: BrowserContext

beforeAll(async () => {
  // `npm test` has just built the packages; the demo builds its app.
  const { startDemo } = (await import(DEMO_SCRIPT)) as { startDemo: StartDemo }
  browser = await launchChromium()
  demo = await startDemo({ appPort: 0, flagsPort: 0, buildPackages: false, quiet: true })
})
afterAll(async () => {
  await Promise.all([browser?.close(), demo?.close()])
})
beforeEach(async () => {
  context = await browser.newContext()
})
afterEach(async () => {
  await context?.close()
  await fetch(`${demo.flagsUrl}/demo/outage`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"mode":"none"}' })
})

interface Table {
  values: Record<string, string>
  sources: Record<string, string>
  freshness: Record<string, string>
  state: string
  source: string
  error: string
}

async function readTable(page: Page): Promise<Table> {
  return page.evaluate((keys) => {
    const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() ?? '(missing)'
    const each = (suffix: string) => Object.fromEntries(keys.map((k) => [k, text(`flag-${k}-${suffix}`)]))
    return {
      values: each('value'),
      sources: each('source'),
      freshness: each('stale'),
      state: text('status-state'),
      source: text('status-source'),
      error: text('status-error'),
    }
  }, KEYS)
}

async function waitForState(page: Page, state: string, source?: string): Promise<Table> {
  await page.waitForFunction(
    ([state, source]) =>
      document.querySelector('[data-testid="status-state"]')?.textContent === state &&
      (source === undefined || document.querySelector('[data-testid="status-source"]')?.textContent === source),
    [state, source] as const,
    { timeout: 15_000 },
  )
  return readTable(page)
}

const all = (record: Record<string, string>, value: string) => Object.fromEntries(Object.keys(record).map((k) => [k, value]))

describe('the demo app', () => {
  test('loads with every flag from the network; the 503 outage switch holds the values as stale, a reload shows the cache, recovery is ready again', async () => {
    const page = await context.newPage()
    await page.goto(`${demo.appUrl}/?user=alice`)
    const ready = await waitForState(page, 'ready', 'network')
    expect(ready.sources).toEqual(all(ready.sources, 'network'))
    expect(ready.values['beta-dashboard']).toBe('true') // alice is on the pro plan
    expect(JSON.parse(ready.values['banner-config'])).toEqual({ text: 'Welcome to the Holdfast demo shop', color: '#2563eb' })
    expect(await page.getByTestId('beta-dashboard').count()).toBe(1)
    await waitForCachedFlags(page)

    // The outage switch: the page sets the server's mode and refreshes at once.
    await page.getByTestId('outage-503').click()
    await expect.poll(() => page.getByTestId('outage-current').textContent()).toBe('503')
    const outage = await waitForState(page, 'stale')
    expect(outage.values).toEqual(ready.values)
    expect(outage.sources).toEqual(ready.sources)
    expect(outage.freshness).toEqual(all(outage.freshness, 'stale'))
    expect(outage.error).toBe('HTTP')

    await page.reload()
    const reloaded = await waitForState(page, 'stale', 'cache')
    expect(reloaded.values).toEqual(ready.values)
    expect(reloaded.sources).toEqual(all(reloaded.sources, 'cache'))
    expect(reloaded.error).toBe('HTTP')
    expect(await page.getByTestId('outage-current').textContent()).toBe('503')

    await page.getByTestId('outage-none').click()
    const recovered = await waitForState(page, 'ready', 'network')
    expect(recovered.values).toEqual(ready.values)
    expect(recovered.sources).toEqual(all(recovered.sources, 'network'))
    expect(recovered.freshness).toEqual(all(recovered.freshness, 'fresh'))
    expect(recovered.error).toBe('—')
  })
})
