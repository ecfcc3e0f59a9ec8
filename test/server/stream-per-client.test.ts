// One client's share of the event streams (CONTRACT §10). Streams are bounded by `--max-streams`
// (at most half the connections); one address could open all of them (a script in a loop, a tab
// gone wrong; no key is needed when none is set), and every other user's stream got 503, their
// live updates back to polling. `--max-streams-per-client N` bounds what one address may hold.
// Off by default: behind a proxy or load balancer every stream comes from its address, and such a
// relay would refuse its own users (cap per client at the proxy there). Real connections on
// 127.0.0.1, from several loopback addresses (127.0.0.2, 127.0.0.3: Linux routes all of 127/8).
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagHandler, toFetchHandler, type FlagServer } from '@holdfast/server'
import { DEMO_FLAGS, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { streamClientOf } from '../../packages/server/src/ofrep/streamClient'

const open: ClientRequest[] = []
afterEach(() => {
  for (const req of open.splice(0)) req.destroy()
})

/** Opens the event stream from `localAddress`; resolves with its status and Retry-After once the head arrives. */
function streamFrom(server: FlagServer, localAddress: string): Promise<{ status: number; retryAfter: string | undefined; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}/holdfast/v1/stream`, { localAddress, agent: false }, (res: IncomingMessage) => {
      res.resume()
      resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, close: () => req.destroy() })
    })
    req.once('error', reject)
    req.end()
    open.push(req)
  })
}

async function flagsServer(options: Parameters<typeof startServer>[0] = {}): Promise<FlagServer> {
  const file = join(await tempDir(), 'flags.json')
  await writeFile(file, JSON.stringify({ flags: { f: { state: 'ENABLED', variants: { on: true }, defaultVariant: 'on' } } }))
  return startServer({ flags: file, ...options })
}

const metric = async (server: FlagServer, pattern: RegExp) => Number((await (await fetch(`${server.url}/metrics`)).text()).match(pattern)?.[1] ?? 'NaN')

describe('--max-streams-per-client', () => {
  it('one address past its share gets 503 + Retry-After as at the global cap; other addresses still get theirs; a closed stream frees its place', async () => {
    const server = await flagsServer({ liveUpdates: { maxConnections: 10, maxConnectionsPerClient: 2 } })
    const first = [await streamFrom(server, '127.0.0.2'), await streamFrom(server, '127.0.0.2')]
    expect(first.map((s) => s.status)).toEqual([200, 200])
    // Before: 200, and on to the global cap, which then refused everyone else.
    const third = await streamFrom(server, '127.0.0.2')
    expect(third.status).toBe(503)
    expect(Number(third.retryAfter)).toBeGreaterThan(0)
    expect((await streamFrom(server, '127.0.0.3')).status).toBe(200)
    expect(server.handler.stream!.connections()).toBe(3)
    expect(await metric(server, /holdfast_stream_refused_total\{reason="per-client"\} (\d+)/)).toBe(1)
    expect(await metric(server, /holdfast_http_requests_total\{route="stream",method="GET",status="503"\} (\d+)/)).toBe(1)
    first[0].close()
    await waitFor(() => server.handler.stream!.connections() === 2, 5000)
    expect((await streamFrom(server, '127.0.0.2')).status).toBe(200)
  })

  it('is off by default: one address (a proxy in front of the relay) may hold every stream up to the global cap, whose refusals are counted apart', async () => {
    const server = await flagsServer({ liveUpdates: { maxConnections: 4 } })
    const streams = []
    for (let i = 0; i < 4; i++) streams.push(await streamFrom(server, '127.0.0.2'))
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200])
    expect((await streamFrom(server, '127.0.0.3')).status).toBe(503)
    expect(await metric(server, /holdfast_stream_refused_total\{reason="max-streams"\} (\d+)/)).toBe(1)
  })

  it('behind a Web Request adapter (no remote address) it bounds nothing, and the operator is told so once', async () => {
    const logger = recordingLogger()
    const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger, maxEventLoopDelayMs: 0, liveUpdates: { maxConnectionsPerClient: 1 } })
    const handle = toFetchHandler(handler)
    const controllers = [new AbortController(), new AbortController(), new AbortController()]
    try {
      const answers = await Promise.all(controllers.map((c) => handle(new Request('http://app.example/holdfast/v1/stream', { signal: c.signal }))))
      // Served, as the option's documentation says: a Request carries no address to count by.
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
      // Before: nothing said it; an operator who set the bound in a route handler believed it held.
      const said = logger.lines.filter((line) => /maxConnectionsPerClient/.test(line))
      expect(said).toHaveLength(1)
      expect(said[0]).toMatch(/maxConnectionsPerClient \(--max-streams-per-client\) bounds nothing here: a stream came with no remote address/)
    } finally {
      for (const c of controllers) c.abort()
      await handler.close()
    }
  })

  it('counts an IPv6 client by its /64 (one host holds a whole /64), an IPv4 one (mapped or not) by its address', () => {
    expect(streamClientOf('2001:db8:1:2:aaaa::1')).toBe(streamClientOf('2001:db8:1:2:bbbb:cccc:dddd:eeee'))
    expect(streamClientOf('2001:db8:1:2::1')).not.toBe(streamClientOf('2001:db8:1:3::1'))
    expect(streamClientOf('::ffff:192.0.2.1')).toBe(streamClientOf('192.0.2.1'))
    expect(streamClientOf('192.0.2.1')).not.toBe(streamClientOf('192.0.2.2'))
    expect(streamClientOf('::1')).toBe(streamClientOf('0:0:0:0:0:0:0:1'))
    expect(streamClientOf(undefined)).toBeUndefined()
  })

  it('the CLI reads it, a whole number from 1; without streams it is refused', () => {
    const given = buildServerOptions({ flags: 'flags.json', 'max-streams-per-client': '64' }, {})
    expect(given.ok && given.options.liveUpdates).toEqual({ maxConnectionsPerClient: 64 })
    const both = buildServerOptions({ flags: 'flags.json', 'max-streams': '100', 'max-streams-per-client': '8' }, {})
    expect(both.ok && both.options.liveUpdates).toEqual({ maxConnections: 100, maxConnectionsPerClient: 8 })
    for (const bad of ['0', '-1', '1.5', 'x']) {
      const refused = buildServerOptions({ flags: 'flags.json', 'max-streams-per-client': bad }, {})
      expect(refused.ok ? 'accepted' : refused.error, bad).toMatch(/--max-streams-per-client must be from 1/)
    }
    const off = buildServerOptions({ flags: 'flags.json', 'no-live-updates': true, 'max-streams-per-client': '8' }, {})
    expect(off.ok ? 'accepted' : off.error).toMatch(/--max-streams-per-client has no streams to bound with --no-live-updates/)
  })
})
