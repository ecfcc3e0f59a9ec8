// An embedder's logger (createFlagServer({ logger })) gets each line escaped by the server, so text a
// client sent cannot write a line of its own in the host's log. Only the holdfast-server command's
// own logger, which escapes its lines itself, is told apart (ba3f546), by a mark no host can hold.
// A common "safe logger" answers any property with a no-op function (a Proxy over console): the
// mark read on it is that function, truthy. Real server and events sink on 127.0.0.1.
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagServer, type FlagServer } from '@holdfast/server'
import { post, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const FORGED = '\n[holdfast-server] forged: the data dir was wiped'
const servers: FlagServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

describe("an embedder's logger", () => {
  it('a Proxy answering every property (a no-op for a method it lacks) still gets one line per message', async () => {
    const lines: string[] = []
    const say = (message: string) => void lines.push(message)
    const base = { info: say, warn: say, error: say }
    const logger = new Proxy(base, { get: (target, key) => (target as Record<PropertyKey, unknown>)[key] ?? (() => {}) })
    const sink = await startUpstream({ status: 400, json: { error: 'no' } })
    const server = await createFlagServer({ flags: 'examples/flags.json', port: 0, eventsUpstream: `${sink.url}/events`, eventsSpoolDir: join(await tempDir(), 'spool'), logger })
    servers.push(server)
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [{ id: `e1${FORGED}`, type: 'custom', name: 'signup', time: Date.now() }] })).status).toBe(202)
    await waitFor(() => lines.some((line) => /refused 1 event\(s\) with 400/.test(line)), 15_000)
    expect(lines.filter((line) => /[\n\r\u2028\u2029]/.test(line))).toEqual([])
    expect(lines.find((line) => /refused 1 event\(s\) with 400/.test(line))).toContain('ids e1\\n[holdfast-server] forged')
  }, 30_000)
})
