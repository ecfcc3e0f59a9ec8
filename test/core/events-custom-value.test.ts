// A custom event's `value` (CONTRACT §3: `string | number`) as the reference events server on
// 127.0.0.1 stores it. A value the app could not have meant to send (NaN, ±Infinity, a function,
// an object from untyped code) is left out of its event with a warning naming the event, as a
// metadata value is (§6); before, NaN and ±Infinity arrived as `null` and a function vanished, both
// without a word: the stored event said something the app never logged. Exposures keep their
// values as they are: flag values, any JSON.
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFlagServer } from '@holdfast/server'
import { createTestLogger, uniqueStorageName } from '../support/clock'

const closing: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  for (const c of closing.splice(0).reverse()) await c.close()
})

async function started() {
  const eventsFile = join(await mkdtemp(join(tmpdir(), 'holdfast-custom-value-')), 'events.jsonl')
  const server = await createFlagServer({
    flags: { flags: { layout: { state: 'ENABLED', variants: { grid: { columns: 3, dense: null } }, defaultVariant: 'grid' } } } as never,
    port: 0,
    eventsFile,
    logger: { info() {}, warn() {}, error() {} },
    maxEventLoopDelayMs: 0,
  })
  closing.push(server)
  const logger = createTestLogger()
  const client: FlagClient = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    storageName: uniqueStorageName('events-custom-value'),
    logger,
    liveUpdates: false,
    events: { url: `${server.url}/holdfast/v1/events`, flushIntervalMs: 3_600_000 },
  })
  closing.push(client)
  await client.start()
  const stored = async () => (await readFile(eventsFile, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  return { client, logger, stored }
}

test('a NaN value is left out of its event with one warning naming it; the event and the rest of its batch arrive intact', async () => {
  const { client, logger, stored } = await started()
  client.logEvent('before', { value: 'x' })
  client.logEvent('conversion-rate', { value: 0 / 0, metadata: { plan: 'pro' } })
  client.logEvent('after', { value: 7 })
  await client.flush()

  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 3, dropped: 0 })
  const events = await stored()
  expect(events.map((e) => e.name)).toEqual(['before', 'conversion-rate', 'after'])
  expect(events[0].value).toBe('x')
  expect(events[1]).not.toHaveProperty('value')
  expect(events[1]).toMatchObject({ type: 'custom', targetingKey: 'alice', metadata: { plan: 'pro' } })
  expect(events[2].value).toBe(7)
  expect(logger.warnings).toHaveLength(1)
  expect(logger.warnings[0]).toContain('"conversion-rate"')
  expect(logger.warnings[0]).toMatch(/value/)
})

test('±Infinity, a function, an object or an array as a custom value: left out, one warning each; strings, finite numbers and booleans arrive as logged, and exposures keep any JSON', async () => {
  const { client, logger, stored } = await started()
  expect(client.getConfig('layout', {})).toEqual({ columns: 3, dense: null })
  const odd: Record<string, unknown> = { 'inf': Infinity, 'minus-inf': -Infinity, 'fn': () => 1, 'obj': { a: 1 }, 'list': [1, 2] }
  for (const [name, value] of Object.entries(odd)) client.logEvent(name, { value: value as never })
  client.logEvent('text', { value: '' })
  client.logEvent('zero', { value: -0 })
  client.logEvent('big', { value: 1e300 })
  client.logEvent('flag', { value: false as never })
  await client.flush()

  const events = await stored()
  const byName = new Map(events.map((e) => [e.name, e]))
  expect(events).toHaveLength(10)
  for (const name of Object.keys(odd)) {
    expect(byName.get(name), name).not.toHaveProperty('value')
    expect(logger.warnings.filter((w) => w.includes(`"${name}"`)), name).toHaveLength(1)
  }
  expect(logger.warnings).toHaveLength(Object.keys(odd).length)
  expect([byName.get('text')!.value, byName.get('zero')!.value, byName.get('big')!.value, byName.get('flag')!.value]).toEqual(['', 0, 1e300, false])
  expect(byName.get('layout')).toMatchObject({ type: 'exposure', flagKey: 'layout', value: { columns: 3, dense: null } })
})
