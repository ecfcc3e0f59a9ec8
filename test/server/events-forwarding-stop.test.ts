// The relay stopped (SIGTERM's drain) while a batch is out to a slow sink: a 2xx that comes in
// while stopping is acked in the spool, so the restart does not send those events again; a sink
// that does not answer does not hold the stop, and the log says how many events go again.
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { events } from './cappedSink'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'

const servers: ReturnType<typeof createServer>[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

/** A sink that keeps each batch's ids as it reads it, then answers 202 after `answer.delayMs` (never with `Infinity`). */
async function slowSink(answer: { delayMs: number }) {
  const received: string[] = []
  const held: ServerResponse[] = []
  const sink = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      received.push(...(JSON.parse(body).events as Array<{ id: string }>).map((e) => e.id))
      if (answer.delayMs === Infinity) return void held.push(res)
      setTimeout(() => res.writeHead(202, { 'content-type': 'application/json' }).end('{}'), answer.delayMs)
    })
  })
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
  servers.push(sink)
  const close = () => held.splice(0).forEach((res) => res.destroy())
  return { received, close, url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e` }
}

const relay = async (url: string, spool: string) => {
  const logger = recordingLogger()
  return { logger, server: await startServer({ logger, eventsUpstream: url, eventsSpoolDir: spool, eventsForwarding: { batchSize: 40 } }) }
}
const count = (ids: string[]) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>())

describe('stopping the relay with a batch out to the sink', () => {
  it('a 202 that lands 200 ms into the stop is acked: after a restart on the same spool the sink has each event once', async () => {
    const answer = { delayMs: 200 }
    const sink = await slowSink(answer)
    const spool = join(await tempDir(), 'spool')
    const first = await relay(sink.url, spool)
    expect((await post(`${first.server.url}/holdfast/v1/events`, { events: events('a', 10) })).status).toBe(202)
    await waitFor(() => sink.received.length === 10, 10_000, 5)
    await first.server.close() // the sink's 202 is 200 ms away
    expect(first.logger.lines.join('\n')).not.toMatch(/sent again/)

    answer.delayMs = 0
    const second = await relay(sink.url, spool)
    expect((await post(`${second.server.url}/holdfast/v1/events`, { events: events('b', 5) })).status).toBe(202)
    await waitFor(() => second.server.eventsForwarding!().delivered >= 5 && second.server.eventsForwarding!().pending === 0, 10_000, 5)
    await second.server.close()
    expect(second.server.eventsForwarding!().delivered).toBe(5)
    expect(count(sink.received)).toEqual(count([...events('a', 10), ...events('b', 5)].map((e) => e.id)))
  })

  it('a sink that never answers: the stop ends within its bound, says the 10 events go again, and the restart delivers them', async () => {
    const answer = { delayMs: Infinity }
    const sink = await slowSink(answer)
    const spool = join(await tempDir(), 'spool')
    const first = await relay(sink.url, spool)
    expect((await post(`${first.server.url}/holdfast/v1/events`, { events: events('c', 10) })).status).toBe(202)
    await waitFor(() => sink.received.length === 10, 10_000, 5)
    const started = performance.now()
    await first.server.close()
    expect(performance.now() - started).toBeLessThan(4_000)
    expect(first.logger.lines.join('\n')).toMatch(/stopped with a batch of 10 event\(s\) the sink had not answered within 2 s; they stay in the spool and are sent again/)
    sink.close()

    answer.delayMs = 0
    const second = await relay(sink.url, spool)
    await waitFor(() => second.server.eventsForwarding!().delivered === 10 && second.server.eventsForwarding!().pending === 0, 10_000, 5)
    await second.server.close()
    expect(count(sink.received)).toEqual(count([...events('c', 10), ...events('c', 10)].map((e) => e.id)))
  })
})
