// The relay end to end: a real browser, a real relay process in front of a real upstream. The
// upstream goes down, the relay is killed and restarted, and a browser that has never seen the
// app (a fresh profile: no IndexedDB) still gets the values, marked stale, with their true age.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { Browser } from 'playwright-core'
import { launchChromium } from './support/browser'
import { startFixture } from './support/fixture'
import { expectAdaValues, FLAG_KEYS, fixtureFlags, openFixture, waitForStatus } from './support/fixturePage'
import { startFlagServer, type Closable, type TestFlagServer } from './support/servers'

const root = fileURLToPath(new URL('../..', import.meta.url))
const children: ChildProcess[] = []
let browser: Browser
let upstream: TestFlagServer
let fixture: Closable
let dataDir: string

beforeAll(async () => {
  browser = await launchChromium()
  ;[upstream, fixture] = await Promise.all([startFlagServer(fixtureFlags()), startFixture()])
  dataDir = await mkdtemp(join(tmpdir(), 'holdfast-e2e-relay-'))
})
afterAll(async () => {
  await Promise.all([browser?.close(), upstream?.close(), fixture?.close()])
  await rm(dataDir, { recursive: true, force: true })
})
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** Starts `holdfast-server --upstream … --data-dir …` as an operator would; resolves with its URL. */
async function startRelay(): Promise<{ url: string; child: ChildProcess; exited: Promise<unknown> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/bin.ts', '--upstream', upstream.url, '--data-dir', dataDir, '--port', '0', '--upstream-timeout', '1'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  const exited = new Promise((resolve) => child.on('exit', resolve))
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the relay did not start:\n${output}`)), 30_000)
    const read = (chunk: Buffer) => {
      output += chunk
      const match = output.match(/serving .* at (http:\/\/\S+)/)
      if (match) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout!.on('data', read)
    child.stderr!.on('data', read)
    child.on('exit', () => reject(new Error(`the relay exited:\n${output}`)))
  })
  return { url, child, exited }
}

async function relayStatus(url: string): Promise<{ fetchedAt: number; source: string; stale: boolean; dataDir?: { lastGeneration?: number } }> {
  return (await fetch(`${url}/holdfast/v1/status`)).json() as never
}

describe('the relay between the browser and the flag service', () => {
  test('upstream down, relay restarted, a fresh browser profile: values served, stale, with their true age', async () => {
    // 1. All is well: a browser gets its values through the relay.
    const first = await startRelay()
    const profile1 = await browser.newContext()
    const page1 = await openFixture(profile1, fixture.url, { flags: first.url, events: 'off' })
    const online = await waitForStatus(page1, 'ready', 'network')
    expectAdaValues(online)
    let saved = await relayStatus(first.url)
    while ((saved.dataDir?.lastGeneration ?? 0) === 0) {
      await new Promise((r) => setTimeout(r, 50))
      saved = await relayStatus(first.url)
    }
    const fetchedAt = saved.fetchedAt
    await profile1.close()

    // 2. The flag service goes down, and the relay dies hard.
    await upstream.setOutage('503')
    first.child.kill('SIGKILL')
    await first.exited
    // Let the values age measurably before anyone asks again.
    await new Promise((r) => setTimeout(r, 1500))

    // 3. The relay comes back with only its data dir; a browser that has never been here asks.
    const second = await startRelay()
    expect(await relayStatus(second.url)).toMatchObject({ source: 'data-dir', stale: true, fetchedAt })
    const profile2 = await browser.newContext()
    const page2 = await openFixture(profile2, fixture.url, { flags: second.url, events: 'off' })
    const shown = await waitForStatus(page2, 'stale')
    expect(shown.values).toEqual(online.values)
    expect(Object.values(shown.stale)).toEqual(FLAG_KEYS.map(() => true))
    expect(shown.error).toBe('UPSTREAM_STALE')
    // The true age: when the relay last heard from the upstream, not when this browser got them.
    const details = await page2.evaluate((keys) => keys.map((key) => window.holdfast.getDetails(key, null as never)), [...FLAG_KEYS])
    for (const detail of details) {
      expect(detail.stale, detail.key).toBe(true)
      expect(detail.updatedAt, detail.key).toBeLessThanOrEqual(fetchedAt)
    }
    const seenAt = await page2.evaluate(() => Date.now())
    expect(seenAt - fetchedAt).toBeGreaterThanOrEqual(1500)
    await profile2.close()

    // 4. The flag service is back: the next answer is fresh again.
    await upstream.setOutage('none')
    const profile3 = await browser.newContext()
    const page3 = await openFixture(profile3, fixture.url, { flags: second.url, events: 'off' })
    expectAdaValues(await waitForStatus(page3, 'ready', 'network'))
    await profile3.close()
  }, 120_000)
})
