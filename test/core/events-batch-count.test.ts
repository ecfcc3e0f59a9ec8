// A batch with more events than the sink takes in one request (EVENT_LIMITS.maxEvents, 10,000) is
// too large, not bad: CONTRACT §6 has the client split a batch answered 413 and drop one answered
// 400. Before, the reference server answered such a batch 400 INVALID_EVENTS and a client whose
// batchSize is above the cap lost every event of it. The real client, as built (dist), against a
// real server on 127.0.0.1, reading its events file.
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { createFlagServer, EVENT_LIMITS } from '@holdfast/server'
// Built by `npm run build`: the client as an app installs it.
import { createClient } from '../../packages/core/dist/index.js'
import { createTestLogger, uniqueStorageName } from '../support/clock'

const quiet = { info() {}, warn() {}, error() {} }

test('a client with batchSize above the sink\'s 10,000 events per request: every event arrives, none dropped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-batch-count-'))
  const eventsFile = join(dir, 'events.jsonl')
  const server = await createFlagServer({ flags: { flags: {} } as never, port: 0, eventsFile, logger: quiet, maxEventLoopDelayMs: 0 })
  const seen: number[] = []
  const counting: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    if (String(input).endsWith('/holdfast/v1/events')) seen.push(response.status)
    return response
  }
  const flags = JSON.stringify({ flags: [{ key: 'f', value: true, reason: 'STATIC' }] })
  const logger = createTestLogger()
  // A logged-out page (paused: its events carry no targetingKey) sends events small enough that
  // 10,500 of them fit under the 1 MiB body cap, so the count alone is over a limit.
  const client = createClient({
    url: 'http://flags.invalid',
    context: { targetingKey: 'alice' },
    storageName: uniqueStorageName('batch-count'),
    logger,
    fetch: (input, init) => (String(input).includes('/ofrep/') ? Promise.resolve(new Response(flags, { headers: { 'content-type': 'application/json' } })) : counting(input, init)),
    events: { url: `${server.url}/holdfast/v1/events`, batchSize: 20_000, maxQueued: 30_000, flushIntervalMs: 3_600_000, exposures: false },
  })
  const total = EVENT_LIMITS.maxEvents + 500
  try {
    await client.start()
    client.pause()
    for (let i = 0; i < total; i++) client.logEvent('e')
    await client.flush()

    const stored = (await readFile(eventsFile, 'utf8')).trim().split('\n')
    expect(stored).toHaveLength(total)
    expect(new Set(stored.map((line) => (JSON.parse(line) as { id: string }).id)).size).toBe(total)
    expect(client.getEventStats()).toMatchObject({ queued: 0, sent: total, dropped: 0 })
    // The first request carried the whole batch and was answered 413, then the halves 202.
    expect(seen[0]).toBe(413)
    expect(seen.slice(1).every((status) => status === 202)).toBe(true)
  } finally {
    await client.close()
    await server.close()
  }
}, 60_000)
