import { appendFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createFlagServer } from '@holdfast/server'
import { DEMO_FLAGS, post, recordingLogger, startServer, tempDir } from './helpers'

let counter = 0
function event(overrides: Record<string, unknown> = {}) {
  counter++
  return { id: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`, type: 'custom', name: 'clicked', time: 1_700_000_000_000 + counter, ...overrides }
}

async function readLines(file: string): Promise<unknown[]> {
  const text = await readFile(file, 'utf8')
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line))
}

describe('POST /holdfast/v1/events', { timeout: 30_000 }, () => {
  it('answers 202 with accepted and duplicate counts, deduplicating by id', async () => {
    const server = await startServer()
    const a = event()
    const b = event({ type: 'exposure', name: 'beta', flagKey: 'beta', value: true, variant: 'on', reason: 'TARGETING_MATCH', targetingKey: 'u' })
    const first = await post(`${server.url}/holdfast/v1/events`, { events: [a, b] })
    expect(first.status).toBe(202)
    expect(await first.json()).toEqual({ accepted: 2, duplicates: 0 })
    // A retry of the same batch (at-least-once delivery) plus one new event and an in-batch repeat.
    const c = event()
    const retry = await post(`${server.url}/holdfast/v1/events`, { events: [a, b, c, c] })
    expect(await retry.json()).toEqual({ accepted: 1, duplicates: 3 })
    expect(server.events()).toEqual([a, b, c])
  })

  it('without an events file or upstream, says at start that accepted events are kept in memory only', async () => {
    const logger = recordingLogger()
    await startServer({ logger })
    expect(logger.lines.join('\n')).toMatch(/events: no --events-file .* kept only in memory .* lost when the server stops/)
    const kept = recordingLogger()
    await startServer({ logger: kept, eventsFile: join(await tempDir(), 'events.jsonl') })
    expect(kept.lines.join('\n')).not.toMatch(/kept only in memory/)
  })

  it('appends only new events to the events file, one JSON object per line', async () => {
    const file = join(await tempDir(), 'nested', 'events.jsonl')
    const server = await startServer({ eventsFile: file })
    const a = event()
    const b = event()
    await post(`${server.url}/holdfast/v1/events`, { events: [a] })
    await post(`${server.url}/holdfast/v1/events`, { events: [a, b] })
    expect(await readLines(file)).toEqual([a, b])
  })

  it('keeps deduplicating after a restart on the same file, cutting off a half-written last line', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const a = event()
    const b = event()
    const before = await createFlagServer({ flags: DEMO_FLAGS, port: 0, eventsFile: file, logger: recordingLogger() })
    await post(`${before.url}/holdfast/v1/events`, { events: [a, b] })
    await before.close()
    // A crash in the middle of a write leaves half a line behind.
    await appendFile(file, '{"id":"half-writ')

    const logger = recordingLogger()
    const after = await startServer({ eventsFile: file, logger })
    expect(after.events()).toEqual([a, b])
    expect(logger.lines.join('\n')).toMatch(/\[holdfast-server\].*cut 16 byte\(s\) of an interrupted write/)
    const c = event()
    const response = await post(`${after.url}/holdfast/v1/events`, { events: [a, b, c] })
    expect(await response.json()).toEqual({ accepted: 1, duplicates: 2 })
    // The half line (never acknowledged: the 202 waits for fsync) is gone and nothing is glued.
    expect(await readFile(file, 'utf8')).toBe([a, b, c].map((e) => JSON.stringify(e) + '\n').join(''))
  })

  it('refuses a batch with any invalid event (400, nothing stored)', async () => {
    const server = await startServer()
    const good = event()
    const bad = [
      { ...event(), id: 7 },
      { ...event(), id: '' },
      { ...event(), type: 'click' },
      { ...event(), name: undefined },
      { ...event(), time: '2024-01-01' },
      null,
    ]
    for (const invalid of bad) {
      const response = await post(`${server.url}/holdfast/v1/events`, { events: [good, invalid] })
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ errorCode: 'INVALID_EVENTS', errorDetails: expect.stringContaining('events[1]') })
    }
    for (const body of [{}, { events: 'x' }, [good]]) {
      expect((await post(`${server.url}/holdfast/v1/events`, body)).status).toBe(400)
    }
    const garbled = await post(`${server.url}/holdfast/v1/events`, '{"events": [')
    expect(garbled.status).toBe(400)
    expect(await garbled.json()).toMatchObject({ errorCode: 'PARSE_ERROR' })
    expect(server.events()).toEqual([])
    // The good event was not consumed by the refused batches.
    expect(await (await post(`${server.url}/holdfast/v1/events`, { events: [good] })).json()).toEqual({ accepted: 1, duplicates: 0 })
  })

  it('counts concurrent retries of one batch once', async () => {
    const server = await startServer({ eventsFile: join(await tempDir(), 'events.jsonl') })
    const batch = { events: [event(), event(), event()] }
    const results = await Promise.all(
      Array.from({ length: 5 }, async () => (await post(`${server.url}/holdfast/v1/events`, batch)).json() as Promise<{ accepted: number }>),
    )
    expect(results.reduce((sum, r) => sum + r.accepted, 0)).toBe(3)
    expect(server.events()).toHaveLength(3)
  })

  it('answers 413 to a batch over 1 MiB', async () => {
    const server = await startServer()
    const big = { events: [event({ metadata: { blob: 'x'.repeat(1_048_576) } })] }
    expect((await post(`${server.url}/holdfast/v1/events`, big)).status).toBe(413)
    expect(server.events()).toEqual([])
  })

  it('resetEvents() forgets events and empties the file', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    await writeFile(file, '')
    const server = await startServer({ eventsFile: file })
    const a = event()
    await post(`${server.url}/holdfast/v1/events`, { events: [a] })
    await server.resetEvents()
    expect(server.events()).toEqual([])
    expect(await readFile(file, 'utf8')).toBe('')
    expect(await (await post(`${server.url}/holdfast/v1/events`, { events: [a] })).json()).toEqual({ accepted: 1, duplicates: 0 })
  })
})
