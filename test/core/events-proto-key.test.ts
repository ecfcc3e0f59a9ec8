// A flag value may carry a `__proto__` key (JSON.parse makes it an own key). The reference server,
// like any careful receiver, refuses a batch holding one, and a refused batch is dropped: so the
// client leaves that key out of the exposure instead of letting one flag take every event logged
// beside it down. Checked against the real server on 127.0.0.1, reading its events file.
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { createClient } from '@holdfast/core'
import { createFlagServer } from '@holdfast/server'
import { createTestLogger, uniqueStorageName } from '../support/clock'

test('an exposure of a value holding a __proto__ key is delivered without it, and the events beside it arrive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-proto-'))
  const eventsFile = join(dir, 'events.jsonl')
  const server = await createFlagServer({ flags: { flags: {} } as never, port: 0, eventsFile, logger: { info() {}, warn() {}, error() {} }, maxEventLoopDelayMs: 0 })
  // The flag answer comes from a stand-in OFREP server (the reference server's definitions refuse such keys).
  const answer = '{"flags":[{"key":"cfg","value":{"__proto__":{"polluted":true},"a":1},"reason":"STATIC"}]}'
  const fetchFlags: typeof fetch = async (input, init) =>
    String(input).includes('/ofrep/') ? new Response(answer, { status: 200, headers: { 'content-type': 'application/json' } }) : fetch(input, init)
  const client = createClient({
    url: 'http://flags.invalid',
    context: { targetingKey: 'u1' },
    storageName: uniqueStorageName('events-proto'),
    logger: createTestLogger(),
    fetch: fetchFlags,
    events: { url: `${server.url}/holdfast/v1/events` },
  })
  try {
    await client.start()
    expect(client.getConfig('cfg', {} as Record<string, unknown>)).toMatchObject({ a: 1 })
    client.logEvent('checkout', { value: 3 })
    await client.flush()
    expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2, dropped: 0 })
    const lines = (await readFile(eventsFile, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines.map((e) => e.name).sort()).toEqual(['cfg', 'checkout'])
    const exposure = lines.find((e) => e.type === 'exposure')!
    expect(exposure.value).toEqual({ a: 1 })
    expect(Object.keys(exposure.value as object)).toEqual(['a'])
  } finally {
    await client.close()
    await server.close()
  }
})
