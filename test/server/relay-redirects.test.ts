// A relay's upstream that redirects elsewhere (a moved service, a CDN, or a hijacked DNS name): the
// relay follows, but the credentials it was given (--header values, forwarded headers) go only to
// the origin it was pointed at. fetch itself drops only Authorization across origins; an API key
// under any other name went wherever the redirect said. Two fake upstreams on 127.0.0.1.
import { describe, expect, it } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { evaluate, recordingLogger, startServer } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

const values = async (server: FlagServer, headers: Record<string, string> = {}) => {
  const response = await evaluate(server, { targetingKey: 'user-1' }, headers)
  const body = (await response.json()) as { flags?: Array<{ key: string; value: unknown }> }
  return { status: response.status, flags: Object.fromEntries((body.flags ?? []).map((f) => [f.key, f.value])) }
}

describe('redirects from the upstream', () => {
  it('--flags-url: a redirect to another origin is followed without the --header values; one on the same origin keeps them', async () => {
    const other = await startUpstream({ document: booleanFlags(3, 'off') })
    const upstream = await startUpstream((request) =>
      request.path.startsWith('/v2/') ? { document: booleanFlags(3, 'on') } : { status: 307, headers: { Location: `${other.url}${request.path}` } },
    )
    const headers = { 'X-API-Key': 'relay-key', Authorization: 'Bearer relay-token' }
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, upstreamHeaders: headers, pollIntervalSeconds: 3600, logger: recordingLogger() })
    expect(await values(server)).toMatchObject({ status: 200, flags: { f0: false } })
    expect(upstream.requests[0].headers['x-api-key']).toBe('relay-key')
    expect(other.requests).toHaveLength(1)
    expect(other.requests[0].headers['x-api-key']).toBeUndefined()
    expect(other.requests[0].headers.authorization).toBeUndefined()

    // Moved on the same origin: followed with the credentials.
    const moved = await startUpstream((request) =>
      request.path.startsWith('/v2/') ? { document: booleanFlags(3, 'on') } : { status: 308, headers: { Location: `/v2${request.path}` } },
    )
    const second = await startServer({ flags: undefined, flagsUrl: `${moved.url}/flags.json`, upstreamHeaders: headers, pollIntervalSeconds: 3600, logger: recordingLogger() })
    expect(await values(second)).toMatchObject({ status: 200, flags: { f0: true } })
    expect(moved.requests.at(-1)!.path).toBe('/v2/flags.json')
    expect(moved.requests.at(-1)!.headers['x-api-key']).toBe('relay-key')
  })

  it('--upstream: a 307 to another origin gets the context but not the forwarded key; a 302 for the POST is a failure, not a GET elsewhere', async () => {
    const other = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: 'from elsewhere', reason: 'STATIC' }] }) })
    const upstream = await startUpstream((request) => ({ status: 307, headers: { Location: `${other.url}${request.path}` } }))
    const server = await startServer({ flags: undefined, upstream: upstream.url, forwardHeaders: ['Authorization', 'X-API-Key'], upstreamTimeoutMs: 2000, logger: recordingLogger() })
    expect(await values(server, { 'X-API-Key': 'team-key', Authorization: 'Bearer team-token' })).toMatchObject({ status: 200, flags: { greeting: 'from elsewhere' } })
    // (The relay's own start-up probe goes the same way; the user's request is the one that matters.)
    const forUser = (requests: typeof other.requests) => requests.filter((r) => r.body.includes('user-1'))
    expect(forUser(upstream.requests)[0].headers['x-api-key']).toBe('team-key')
    const arrived = forUser(other.requests)
    expect(arrived).toHaveLength(1)
    expect(arrived[0].method).toBe('POST')
    expect(JSON.parse(arrived[0].body)).toMatchObject({ context: { targetingKey: 'user-1' } })
    expect(arrived[0].headers['x-api-key']).toBeUndefined()
    expect(arrived[0].headers.authorization).toBeUndefined()

    upstream.set({ status: 302, headers: { Location: `${other.url}/login` } })
    const before = other.requests.length
    const fresh = await values(server, { 'X-API-Key': 'team-key-2' })
    expect(fresh.status).toBe(503)
    expect(other.requests).toHaveLength(before)
  })
})
