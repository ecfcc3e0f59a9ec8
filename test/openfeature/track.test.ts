// track() feeding Holdfast's persisted event queue, and exposures once per (user, flag, value),
// checked where they end up: the reference server's events file.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { startServer, tempDir } from '../server/helpers'
import { connect } from './support'

async function eventsFileLines(file: string): Promise<Array<Record<string, any>>> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
}

describe('track() and exposures', () => {
  it('a tracked event reaches the events file exactly once, with its value and flat metadata; odd fields are left out', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const server = await startServer({ eventsFile: file })
    const { client, logger } = await connect(server.url, { targetingKey: 'user-1' }, { events: { url: `${server.url}/holdfast/v1/events`, exposures: false } })
    const details = {
      value: 42.5,
      plan: 'pro',
      seats: 3,
      annual: true,
      when: new Date(0),
      nested: { a: 1 },
      list: [1, 2],
      nan: Number.NaN,
      get throws(): string {
        throw new Error('getter')
      },
    }
    client.track('checkout', details)
    await OpenFeature.clearProviders() // onClose: the provider's own client flushes and closes
    const lines = await eventsFileLines(file)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({
      type: 'custom',
      name: 'checkout',
      targetingKey: 'user-1',
      value: 42.5,
      metadata: { plan: 'pro', seats: 3, annual: true, when: '1970-01-01T00:00:00.000Z' },
    })
    expect(Object.keys(lines[0].metadata).sort()).toEqual(['annual', 'plan', 'seats', 'when'])
    expect(logger.warnings.join('\n')).toMatch(/\[holdfast\] track\(\): left out "nested", "list", "nan", "throws"/)
  })

  it('track() while the OpenFeature context has no targetingKey is left out with a warning, never put on the previous user', async () => {
    // Before: after a logout to a context without targetingKey, a tracked event went out as the
    // previous user's (the client still held their context): user-1 "did" what the visitor did.
    const file = join(await tempDir(), 'events.jsonl')
    const server = await startServer({ eventsFile: file })
    const { client, domain, logger } = await connect(server.url, { targetingKey: 'user-1' }, { events: { url: `${server.url}/holdfast/v1/events`, exposures: false } })
    client.track('as-user-1')
    await OpenFeature.setContext(domain, { plan: 'free' })
    expect(() => client.track('anonymous-click', { value: 1 })).not.toThrow()
    await OpenFeature.setContext(domain, { targetingKey: 'user-2' })
    client.track('as-user-2')
    await OpenFeature.clearProviders()
    const lines = await eventsFileLines(file)
    expect(lines.map((e) => `${e.targetingKey}:${e.name}`)).toEqual(['user-1:as-user-1', 'user-2:as-user-2'])
    expect(logger.warnings.join('\n')).toMatch(/\[holdfast\] track\("anonymous-click"\).*ignored/)
  })

  it('one exposure per (user, flag, value), however often and however it is evaluated', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const server = await startServer({ eventsFile: file })
    const { client, domain } = await connect(server.url, { targetingKey: 'user-1' }, { events: { url: `${server.url}/holdfast/v1/events` } })
    for (let i = 0; i < 5; i++) {
      client.getStringValue('greeting', 'x')
      client.getStringDetails('greeting', 'x')
    }
    client.getNumberValue('limit', 0)
    client.getNumberValue('no-such-flag', 0) // the caller's default: no exposure
    client.getNumberValue('greeting', 0) // type mismatch: no exposure
    await OpenFeature.setContext(domain, { targetingKey: 'user-2' })
    client.getStringValue('greeting', 'x')
    client.getStringValue('greeting', 'x')
    await OpenFeature.clearProviders()
    const exposures = (await eventsFileLines(file)).filter((e) => e.type === 'exposure')
    expect(exposures.map((e) => `${e.targetingKey}:${e.flagKey}:${JSON.stringify(e.value)}`).sort()).toEqual([
      'user-1:greeting:"Hi"',
      'user-1:limit:5',
      'user-2:greeting:"Hi"',
    ])
  })

  it('whatever the details hold, track() never throws and only flat values arrive (property)', async () => {
    const server = await startServer()
    const { client } = await connect(server.url, { targetingKey: 'user-1' }, { events: { url: `${server.url}/holdfast/v1/events`, exposures: false } })
    const inputs = fc.sample(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.anything(), fc.date({ noInvalidDate: false }), fc.double())), { numRuns: 80, seed: 17 })
    inputs.forEach((details, i) => client.track(`e${i}`, details as never))
    await OpenFeature.clearProviders()
    const byName = new Map(server.events().map((e) => [e.name, e]))
    expect(byName.size).toBe(inputs.length)
    inputs.forEach((details, i) => {
      const event = byName.get(`e${i}`)!
      const metadata = (event.metadata ?? {}) as Record<string, unknown>
      for (const [key, value] of Object.entries(metadata)) {
        expect(['string', 'number', 'boolean']).toContain(typeof value)
        if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true)
        expect(key).not.toBe('value')
        const given = (details as Record<string, unknown>)[key]
        expect(given instanceof Date ? given.toISOString() : given).toEqual(value)
      }
      const given = (details as Record<string, unknown>).value
      if (typeof given === 'number' && Number.isFinite(given)) expect(event.value).toBe(given)
      else expect(event.value).toBeUndefined()
    })
  })
})
