// A relay forwarding to another holdfast-server with a batch size above the upstream's 10,000
// events per request (EVENT_LIMITS.maxEvents): the upstream answers 413 (too large, not bad), the
// forwarder halves the batch and every event arrives, none dead-lettered or dropped. Before, the
// upstream answered 400 INVALID_EVENTS, and the relay took a batch merely too big for a bad one:
// it searched it for "the event(s) refused" and logged so.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { EVENT_LIMITS } from '@holdfast/server'
import { steppedClock } from './events-faults'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'

const REQUEST_TIMEOUT = 987_654

it('a forwarded batch over the upstream\'s 10,000 events is split on its 413: every event arrives, none dead-lettered', async () => {
  const dir = await tempDir()
  const sinkFile = join(dir, 'upstream.jsonl')
  const upstream = await startServer({ eventsFile: sinkFile })
  // The spool is filled first, by a relay whose upstream is not there (its retry waits on a clock
  // never advanced): two posts, each within the relay's own intake caps, 12,000 events.
  const spoolDir = join(dir, 'spool')
  const gone = await startServer()
  const goneUrl = `${gone.url}/holdfast/v1/events`
  await gone.close()
  const filler = await startServer({ eventsUpstream: goneUrl, eventsSpoolDir: spoolDir, eventsForwarding: { clock: steppedClock(), timeoutMs: REQUEST_TIMEOUT } })
  const total = EVENT_LIMITS.maxEvents + 2000
  for (const half of [0, 1]) {
    const events = Array.from({ length: total / 2 }, (_, i) => ({ id: `c${half}-${i}`, type: 'custom', name: 'n', time: 1 }))
    expect((await post(`${filler.url}/holdfast/v1/events`, { events })).status).toBe(202)
  }
  await filler.close()
  const clock = steppedClock()
  const logger = recordingLogger()
  const relay = await startServer({
    logger,
    eventsUpstream: `${upstream.url}/holdfast/v1/events`,
    eventsSpoolDir: spoolDir,
    eventsForwarding: { clock, batchSize: 15_000, batchBytes: 1_000_000, timeoutMs: REQUEST_TIMEOUT, backoffBaseMs: 1000, random: () => 0.5 },
  })
  // The first request carries all 12,000 and is refused; the forwarder pauses on the clock.
  await waitFor(() => clock.pending().some((t) => t.ms !== REQUEST_TIMEOUT), 10_000, 5)
  expect(relay.eventsForwarding!()).toMatchObject({ pending: total, lastError: { httpStatus: 413 } })
  clock.advance(1000)
  await waitFor(() => relay.eventsForwarding!().pending === 0, 10_000)
  const ids = (await readFile(sinkFile, 'utf8')).trim().split('\n').map((line) => (JSON.parse(line) as { id: string }).id)
  expect(new Set(ids).size).toBe(total)
  expect(relay.eventsForwarding!()).toMatchObject({ delivered: total, deadLettered: 0, dropped: 0, state: 'ok' })
  expect(logger.lines.join('\n')).not.toMatch(/to find the event\(s\) refused/)
}, 30_000)
