// One event the reference sink refuses (an over-long name or variant, metadata over its caps, a
// flag value nested deeper than a body may be) must not take the valid events beside it down: the
// sink answers 400 for the whole batch and CONTRACT §6 drops a 400'd batch, so delivery drops such
// an event alone before the batch goes out. Checked against the real server on 127.0.0.1, reading
// its events file.
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { createClient } from '@holdfast/core'
import { createFlagServer } from '@holdfast/server'
import { createTestLogger, uniqueStorageName } from '../support/clock'

const deep = (levels: number): unknown => {
  let value: unknown = 'bottom'
  for (let i = 0; i < levels; i++) value = [value]
  return value
}

test('events the sink would refuse are dropped alone (counted, logged); the valid ones beside them are stored', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-limits-'))
  const eventsFile = join(dir, 'events.jsonl')
  const server = await createFlagServer({ flags: { flags: {} } as never, port: 0, eventsFile, logger: { info() {}, warn() {}, error() {} }, maxEventLoopDelayMs: 0 })
  // Flag answers from a stand-in OFREP server: one flag's variant is over the sink's 1,024
  // characters, another's value is nested 100 deep (a valid JSON value, exposed as it is).
  const answer = JSON.stringify({
    flags: [
      { key: 'long-variant', value: true, variant: 'v'.repeat(2000), reason: 'STATIC' },
      { key: 'deep', value: { nested: deep(100) }, reason: 'STATIC' },
      { key: 'fine', value: true, variant: 'on', reason: 'STATIC' },
    ],
  })
  const fetchFlags: typeof fetch = async (input, init) =>
    String(input).includes('/ofrep/') ? new Response(answer, { status: 200, headers: { 'content-type': 'application/json' } }) : fetch(input, init)
  const logger = createTestLogger()
  const client = createClient({
    url: 'http://flags.invalid',
    context: { targetingKey: 'u1' },
    storageName: uniqueStorageName('events-limits'),
    logger,
    fetch: fetchFlags,
    events: { url: `${server.url}/holdfast/v1/events` },
  })
  try {
    await client.start()
    expect(client.getGate('long-variant')).toBe(true)
    expect(client.getValue('deep', {})).toMatchObject({ nested: expect.anything() })
    expect(client.getGate('fine')).toBe(true)
    for (let i = 0; i < 5; i++) client.logEvent(`ok-${i}`, { value: i })
    client.logEvent('x'.repeat(2000))
    client.logEvent('wide', { metadata: Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`k${i}`, i])) })
    client.logEvent('heavy', { metadata: { blob: 'b'.repeat(20_000) } })
    client.logEvent('ok-last')
    await client.flush()

    const stored = (await readFile(eventsFile, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { name: string })
    expect(stored.map((e) => e.name).sort()).toEqual(['fine', 'ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-4', 'ok-last'])
    expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 7, dropped: 5 })
    expect(logger.warnings.join('\n')).toMatch(/dropped 5 events the receiver would refuse \(over its limits/)
  } finally {
    await client.close()
    await server.close()
  }
})
