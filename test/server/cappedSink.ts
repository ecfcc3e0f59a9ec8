// A sink on 127.0.0.1 that answers 400 to batches over K events (not Holdfast's: "max K events
// per request"), and a relay forwarding to it on a stepped clock: shared by the
// events-forwarding-400-size files.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach } from 'vitest'
import { steppedClock } from './events-faults'
import { recordingLogger, startServer, tempDir, waitFor } from './helpers'

const REQUEST_TIMEOUT = 987_654
const pause = (clock: ReturnType<typeof steppedClock>) => clock.pending().find((t) => t.ms !== REQUEST_TIMEOUT)

const servers: ReturnType<typeof createServer>[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

/** A sink on 127.0.0.1 taking at most `cap.k` events per request (400 over it), refusing the ids in `bad` (400) and a batch holding one of `huge` (413). */
export async function cappedSink(cap: { k: number }, bad = new Set<string>(), huge = new Set<string>()) {
  const sizes: number[] = []
  const statuses: number[] = []
  const received: string[] = []
  const sink = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const events = JSON.parse(body).events as Array<{ id: string }>
      sizes.push(events.length)
      if (events.some((e) => huge.has(e.id))) return statuses.push(413), res.writeHead(413).end()
      const refused = events.length > cap.k ? `max ${cap.k} events per request` : events.some((e) => bad.has(e.id)) ? 'invalid event' : undefined
      statuses.push(refused ? 400 : 202)
      if (refused) return res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: refused }))
      received.push(...events.map((e) => e.id))
      res.writeHead(202, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
  servers.push(sink)
  return { sizes, statuses, received, url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e` }
}

export async function relayTo(url: string, forwarding: { batchBytes?: number } = {}) {
  const clock = steppedClock()
  const logger = recordingLogger()
  const relay = await startServer({
    logger,
    eventsUpstream: url,
    eventsSpoolDir: join(await tempDir(), 'spool'),
    eventsForwarding: { clock, batchSize: 40, timeoutMs: REQUEST_TIMEOUT, backoffBaseMs: 1000, random: () => 0.5, ...forwarding },
  })
  const drained = (delivered: number) =>
    waitFor(() => {
      const p = pause(clock)
      if (p) clock.advance(p.ms)
      return relay.eventsForwarding!().delivered === delivered && relay.eventsForwarding!().pending === 0
    }, 20_000, 5)
  return { relay, logger, drained }
}

export const events = (tag: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${tag}-${i}`, type: 'custom', name: 'n', time: 1 }))
