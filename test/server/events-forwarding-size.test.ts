// An event the relay answers 202 for must be deliverable. The relay parses each event and the
// forwarder sends it re-serialised, and re-serialising can make it longer: `1E15` is sent as
// `1000000000000000` (4 bytes become 16), `1E20` as 21 digits. Before, a lone event accepted at
// intake under the 1 MiB body cap could come out at several MiB: the upstream (this same server)
// answered 413, the forwarder dropped it, and an event acknowledged with 202 was lost. Now the
// relay measures each event as it will forward it and refuses, at intake, one that cannot fit the
// upstream's cap (413 EVENT_TOO_LARGE naming the event: the client splits the batch and drops only
// that event, counted in its own `dropped`); nothing answered 202 is undeliverable.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, startServer, tempDir, waitFor } from './helpers'

const CAP = 1_048_576
const ids = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line).id as string)

/** The raw body of one event whose `value` is `count` copies of the number `token`, as the client may send it. */
const rawBody = (id: string, token: string, count: number, extra = '') =>
  `{"events":[${extra}{"id":"${id}","type":"custom","name":"n","time":1,"value":[${Array(count).fill(token).join(',')}]}]}`

describe('events that grow when forwarded', { timeout: 30_000 }, () => {
  it('a lone event under 1 MiB as sent but over it as forwarded is refused at intake (413, naming it), never answered 202 and then dropped upstream', async () => {
    const sinkFile = join(await tempDir(), 'sink.jsonl')
    const upstream = await startServer({ eventsFile: sinkFile })
    const relay = await startServer({ eventsUpstream: `${upstream.url}/holdfast/v1/events`, eventsSpoolDir: join(await tempDir(), 'spool') })

    // 1E15 x 200,000: 1,000,073 bytes as sent (under the cap), 3,400,073 as forwarded.
    const grows = rawBody('grows', '1E15', 200_000)
    expect(Buffer.byteLength(grows)).toBeLessThan(CAP)
    const refused = await post(`${relay.url}/holdfast/v1/events`, grows)
    expect(refused.status).toBe(413)
    expect(await refused.json()).toMatchObject({ errorCode: 'EVENT_TOO_LARGE', errorDetails: expect.stringMatching(/^events\[0\].*3,400,073 bytes.*1,048,576/) })

    // In a batch with a small event, the batch is refused whole (the client splits a 413) and
    // nothing of it is kept: the small one is accepted when sent again on its own.
    const mixed = rawBody('grows-too', '1E15', 200_000, '{"id":"small","type":"custom","name":"n","time":1},')
    const again = await post(`${relay.url}/holdfast/v1/events`, mixed)
    expect(again.status).toBe(413)
    expect(await again.json()).toMatchObject({ errorDetails: expect.stringMatching(/^events\[1\]/) })
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [{ id: 'small', type: 'custom', name: 'n', time: 1 }] })).status).toBe(202)

    // Just under the cap as forwarded (the same numbers written out): accepted and delivered.
    const fits = rawBody('fits', '1000000000000000', 61_000)
    expect((await post(`${relay.url}/holdfast/v1/events`, fits)).status).toBe(202)
    await waitFor(() => relay.eventsForwarding!().delivered === 2, 10_000)
    expect(await ids(sinkFile)).toEqual(['small', 'fits'])
    expect(relay.eventsForwarding!()).toMatchObject({ delivered: 2, dropped: 0, pending: 0 })
  })
})
