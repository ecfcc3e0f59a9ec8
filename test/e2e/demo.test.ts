// Scenario 7: the demo app (examples/react, served by scripts/demo.mjs) as a visitor uses it: it
// loads, and its outage switch does what the page promises — values held and marked stale during
// a 503, cached values after a reload during the outage, and back to ready on recovery; its
// controls never move; its events panel says why events wait; its kill switch reaches every tab
// through the server; and the relay between the app and the upstream flag service keeps the app
// working through an upstream outage, with the build-time fallback made by `holdfast-server snapshot`.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium } from './support/browser'
import { waitForCachedFlags } from './support/fixturePage'

interface Demo {
  appUrl: string
  flagsUrl: string
  eventsFile: string
  flagsFile: string
  fallbackFile: string
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
  await fetch(`${demo.flagsUrl}/demo/outage`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"mode":"none","events":false}' })
  await fetch(`${demo.appUrl}/api/kill-switch`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"on":false}' })
  await fetch(`${demo.appUrl}/api/upstream/outage`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"mode":"none"}' })
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

describe('the demo controls', () => {
  test('the outage buttons stay where they are whatever the panels show (no layout shift)', async () => {
    const page = await context.newPage()
    await page.setViewportSize({ width: 1280, height: 900 })
    await page.goto(`${demo.appUrl}/?user=alice`)
    await waitForState(page, 'ready', 'network')
    const box = async () => {
      const b = await page.getByTestId('outage-503').boundingBox()
      const none = await page.getByTestId('outage-none').boundingBox()
      return { x: b?.x, y: b?.y, width: b?.width, height: b?.height, noneY: none?.y }
    }
    const home = await box()
    expect(home.y).toBeGreaterThan(0)
    const boxes: Record<string, unknown> = {}

    // A 503 with events failing too: the status shows an error and its message, events queue up.
    await page.getByTestId('outage-events').check()
    await page.getByTestId('outage-503').click()
    await waitForState(page, 'stale')
    await page.getByTestId('log-event').click()
    await expect.poll(() => page.getByTestId('events-queued').textContent(), { timeout: 15_000 }).not.toBe('0')
    await page.getByTestId('status-error-message').waitFor()
    boxes['503 + events failing'] = await box()

    await page.getByTestId('outage-html').click()
    await expect.poll(() => page.getByTestId('status-error').textContent(), { timeout: 15_000 }).toBe('INVALID_RESPONSE')
    boxes['html'] = await box()

    // Recovery, the kill switch closing checkout, and another user.
    await page.getByTestId('outage-none').click()
    await page.getByTestId('outage-events').uncheck()
    await waitForState(page, 'ready')
    await page.getByTestId('kill-switch-toggle').click()
    await page.getByTestId('checkout-closed').waitFor({ timeout: 15_000 })
    boxes['kill switch on'] = await box()
    await page.getByTestId('user-bob').click()
    await expect.poll(() => page.getByTestId('current-user').textContent()).toMatch(/^bob/)
    await waitForState(page, 'ready', 'network')
    boxes['as bob'] = await box()
    // The upstream behind the relay fails: the relay panel turns red, the buttons stay put.
    await page.getByTestId('upstream-outage-html').click()
    await expect.poll(() => page.getByTestId('relay-upstream-state').textContent(), { timeout: 15_000 }).toBe('failing')
    boxes['upstream failing'] = await box()

    expect(boxes).toEqual(Object.fromEntries(Object.keys(boxes).map((k) => [k, home])))
  })

  test('the events panel says why events wait and counts retried requests, not events × attempts', async () => {
    const page = await context.newPage()
    await page.goto(`${demo.appUrl}/?user=alice`)
    await waitForState(page, 'ready', 'network')
    await expect.poll(() => page.getByTestId('events-queued').textContent(), { timeout: 15_000 }).toBe('0')
    expect(await page.getByTestId('events-waiting').textContent()).toBe('Nothing waiting.')

    // The flags and the events endpoint both answer 503: five custom events wait, and the panel says why.
    await page.getByTestId('outage-events').check()
    await page.getByTestId('outage-503').click()
    await waitForState(page, 'stale')
    for (let i = 0; i < 5; i++) await page.getByTestId('log-event').click()
    await page.getByTestId('flush-events').click()
    await expect.poll(() => page.getByTestId('events-waiting').textContent(), { timeout: 15_000 }).toMatch(/^\d+ events? waiting: .*503/)
    await expect.poll(async () => Number(await page.getByTestId('events-retries').textContent()), { timeout: 20_000 }).toBeGreaterThan(0)
    const label = await page.locator('.counter', { has: page.getByTestId('events-retries') }).textContent()
    if (label?.includes('retried requests')) {
      // With retriedRequests, a retry of a batch of 5+ events counts once, not 5 times.
      const retried = Number(await page.getByTestId('events-retries').textContent())
      const queued = Number(await page.getByTestId('events-queued').textContent())
      expect(retried).toBeLessThan(queued)
    }

    // The endpoint recovers: everything is delivered and nothing waits.
    await page.getByTestId('outage-none').click()
    await page.getByTestId('outage-events').uncheck()
    await waitForState(page, 'ready')
    await page.getByTestId('flush-events').click()
    await expect.poll(() => page.getByTestId('events-queued').textContent(), { timeout: 30_000 }).toBe('0')
    expect(await page.getByTestId('events-waiting').textContent()).toBe('Nothing waiting.')
  })

  test('the kill switch control changes the flag on the server: a second tab sees it without a click', async () => {
    const [first, second] = [await context.newPage(), await context.newPage()]
    await first.goto(`${demo.appUrl}/?user=alice`)
    await second.goto(`${demo.appUrl}/?user=bob`)
    await waitForState(first, 'ready', 'network')
    await waitForState(second, 'ready', 'network')
    expect(await first.getByTestId('checkout').getAttribute('data-disabled')).toBe('false')
    await expect.poll(() => first.getByTestId('kill-switch-server').textContent()).toBe('off')

    await first.getByTestId('kill-switch-toggle').click()
    // The first tab refreshes at once; the second gets it with its own next poll (every 5 s).
    await first.getByTestId('checkout-closed').waitFor({ timeout: 15_000 })
    expect(await first.getByTestId('kill-switch-server').textContent()).toBe('on')
    expect(await first.getByTestId('flag-checkout-kill-switch-value').textContent()).toBe('true')
    await second.getByTestId('checkout-closed').waitFor({ timeout: 20_000 })
    expect(await second.getByTestId('checkout-button').isDisabled()).toBe(true)
    // Another client entirely (not a tab of this browser) gets it from the server too.
    const response = await fetch(`${demo.flagsUrl}/ofrep/v1/evaluate/flags`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ context: { targetingKey: 'someone-else' } }),
    })
    const { flags } = (await response.json()) as { flags: Array<{ key: string; value: unknown }> }
    expect(flags.find((f) => f.key === 'checkout-kill-switch')?.value).toBe(true)

    await first.getByTestId('kill-switch-toggle').click()
    await expect.poll(() => first.getByTestId('checkout').getAttribute('data-disabled'), { timeout: 15_000 }).toBe('false')
    await expect.poll(() => second.getByTestId('checkout').getAttribute('data-disabled'), { timeout: 20_000 }).toBe('false')
  })
})

describe('npm run demo (the command line)', () => {
  test('--no-build says it skips the build, Ctrl-C stops it with exit code 0, and the events file is kept and its path printed', { timeout: 180_000 }, async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const child = spawn(process.execPath, ['scripts/demo.mjs', '--no-build', '--port', '0', '--flags-port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      await expect.poll(() => output, { timeout: 150_000, interval: 200 }).toMatch(/Ctrl-C to stop/)
      expect(output).not.toMatch(/Building/)
      expect(output).toMatch(/package build skipped: --no-build/)
      // The events go to the events file it prints: nothing it prints may say they are lost (before,
      // the upstream, which takes no events in the demo, said at start that events were kept only
      // in memory and lost when the server stops).
      expect(output).not.toMatch(/kept only in memory|lost when the server stops/)
      const appUrl = output.match(/app +(http:\/\/\S+)/)![1]
      const flagsUrl = output.match(/flag server +(http:\/\/\S+)/)![1]
      const eventsFile = output.match(/events file +(\S+)/)![1]
      expect((await fetch(appUrl)).status).toBe(200)
      const event = { id: 'demo-cli-kept', type: 'custom', name: 'kept', time: Date.now() }
      const sent = await fetch(`${flagsUrl}/holdfast/v1/events`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ events: [event] }) })
      expect(sent.status).toBe(202)

      child.kill('SIGINT')
      expect(await exited).toBe(0)
      expect(output).toContain(`The events the flag server received are in ${eventsFile}`)
      expect(existsSync(eventsFile)).toBe(true)
      expect(readFileSync(eventsFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line))).toEqual([event])
      rmSync(dirname(eventsFile), { recursive: true, force: true })
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})

describe('the relay in the demo', () => {
  test('with the upstream down the app keeps its values, a fresh browser profile still gets them from the relay, and the relay says how old they are', async () => {
    const page = await context.newPage()
    await page.goto(`${demo.appUrl}/?user=alice`)
    const ready = await waitForState(page, 'ready', 'network')
    await expect.poll(() => page.getByTestId('relay-upstream-state').textContent(), { timeout: 15_000 }).toBe('ok')

    await page.getByTestId('upstream-outage-503').click()
    await expect.poll(() => page.getByTestId('upstream-outage-current').textContent()).toBe('503')
    await expect.poll(() => page.getByTestId('relay-upstream-state').textContent(), { timeout: 15_000 }).toBe('failing')
    expect(await page.getByTestId('relay-fetched-age').textContent()).toMatch(/ago|just now/)
    expect(await page.getByTestId('relay-last-error').textContent()).toMatch(/503/)
    // The relay's own outage switch is untouched: the browser's server answers, from what it held.
    expect(await page.getByTestId('outage-current').textContent()).toBe('none')
    await page.getByTestId('refresh').click()
    expect((await readTable(page)).values).toEqual(ready.values)

    // A browser that never saw these values (no IndexedDB): the relay still serves Alice's.
    const fresh = await browser.newContext()
    try {
      const other = await fresh.newPage()
      await other.goto(`${demo.appUrl}/?user=alice`)
      // `ready` with this core; `stale` (UPSTREAM_STALE) once the core reads the relay's metadata.holdfast.
      await other.waitForFunction(
        () =>
          ['ready', 'stale'].includes(document.querySelector('[data-testid="status-state"]')?.textContent ?? '') &&
          document.querySelector('[data-testid="status-source"]')?.textContent === 'network',
        null,
        { timeout: 15_000 },
      )
      const table = await readTable(other)
      expect(table.values).toEqual(ready.values)
      expect(table.sources).toEqual(all(table.sources, 'network'))

      // A visitor the relay has never seen gets 503 from it: the app shows the build-time fallback,
      // which `holdfast-server snapshot` made from the upstream (no hand-written constant).
      const visitor = await fresh.newPage()
      await visitor.goto(`${demo.appUrl}/?user=anonymous`)
      // Fallback values alone are no values of this user's: `error` (CONTRACT §3; older cores said `stale`).
      await visitor.waitForFunction(
        () =>
          ['error', 'stale'].includes(document.querySelector('[data-testid="status-state"]')?.textContent ?? '') &&
          document.querySelector('[data-testid="status-source"]')?.textContent === 'fallback',
        null,
        { timeout: 15_000 },
      )
      const first = await readTable(visitor)
      expect(first.sources).toEqual(all(first.sources, 'fallback'))
      const snapshot = JSON.parse(readFileSync(demo.fallbackFile, 'utf8')) as { flags: Array<{ key: string; value: unknown }> }
      for (const key of KEYS) expect(JSON.parse(first.values[key])).toEqual(snapshot.flags.find((f) => f.key === key)?.value)
    } finally {
      await fresh.close()
    }

    // An upstream that hangs: the relay gives up on it after 1 s and answers from what it holds,
    // well within the app's 3 s request timeout, so the browser sees no TIMEOUT.
    await page.getByTestId('upstream-outage-hang').click()
    await expect.poll(() => page.getByTestId('upstream-outage-current').textContent()).toBe('hang')
    await page.getByTestId('refresh').click()
    await expect.poll(() => page.getByTestId('status-source').textContent(), { timeout: 15_000 }).toBe('network')
    const hanging = await readTable(page)
    expect(hanging.values).toEqual(ready.values)
    expect(hanging.error).not.toBe('TIMEOUT')

    await page.getByTestId('upstream-outage-none').click()
    await expect.poll(() => page.getByTestId('relay-upstream-state').textContent(), { timeout: 20_000 }).toBe('ok')
    await page.getByTestId('refresh').click()
    await waitForState(page, 'ready', 'network')
  })
})

describe('the kill switch during an upstream outage', () => {
  test('the edit waits on the server: the page says so, and the switch shows once the upstream answers again', async () => {
    const page = await context.newPage()
    await page.goto(`${demo.appUrl}/?user=alice`)
    await waitForState(page, 'ready', 'network')
    await page.getByTestId('upstream-outage-503').click()
    await expect.poll(() => page.getByTestId('relay-upstream-state').textContent(), { timeout: 15_000 }).toBe('failing')

    await page.getByTestId('kill-switch-toggle').click()
    await page.getByTestId('kill-switch-pending').waitFor({ timeout: 15_000 })
    expect(await page.getByTestId('kill-switch-server').textContent()).toBe('on')
    expect(await page.getByTestId('checkout').getAttribute('data-disabled')).toBe('false') // the relay's last known good

    await page.getByTestId('upstream-outage-none').click()
    await page.getByTestId('refresh').click()
    await page.getByTestId('checkout-closed').waitFor({ timeout: 20_000 })
    expect(await page.getByTestId('kill-switch-seen').textContent()).toBe('on')
    expect(await page.getByTestId('kill-switch-pending').count()).toBe(0) // no longer waiting
  })
})
