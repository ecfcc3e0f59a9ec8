// What a polling browser downloads from a relay whose upstream has not changed. CONTRACT §2.1: a
// 304 says "the snapshot the ETag names is current: its flags are confirmed fresh". The relay's
// answer carries `metadata.holdfast.fetchedAt`, which moves on every upstream confirmation; when
// the ETag hashed it, every poll of an unchanged relay got a new tag, so a browser polling with
// If-None-Match never got a 304 and downloaded the whole answer each time.
import { describe, expect, it } from 'vitest'
import { createClient } from '@holdfast/core'
import { createStaticSource, createUpstreamSource, type FlagdDefinitions, type FlagServer } from '@holdfast/server'
import { recordingLogger, startServer } from './helpers'
import { booleanFlags, startUpstream, urlSourceFor } from './relay-fakes'

/** A browser's poll: the bulk request with the ETag it holds, if any. */
async function poll(server: FlagServer, etag?: string, targetingKey = 'user-1'): Promise<{ status: number; etag: string | null; body: any }> {
  const response = await fetch(`${server.url}/ofrep/v1/evaluate/flags`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(etag ? { 'If-None-Match': etag } : {}) },
    body: JSON.stringify({ context: { targetingKey } }),
  })
  const text = await response.text()
  return { status: response.status, etag: response.headers.get('etag'), body: text ? JSON.parse(text) : undefined }
}

describe('a relay whose upstream confirms what it holds', () => {
  it('--flags-url: a browser polling with its ETag gets 304 after an upstream 304, and 200 with a new tag on a change or when stale', async () => {
    let clock = 1_800_000_000_000
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const source = urlSourceFor(upstream, { pollIntervalMs: 3_600_000, now: () => clock })
    const server = await startServer({ flags: undefined, source })
    const first = await poll(server)
    expect(first.status).toBe(200)
    expect(first.etag).toBeTruthy()

    clock += 10_000
    expect(await source.refreshDetails()).toMatchObject({ outcome: 'unchanged' })
    expect(upstream.requests.at(-1)!.headers['if-none-match']).toBeTruthy()
    // The same snapshot, confirmed: a 304, no body.
    const confirmed = await poll(server, first.etag!)
    expect(confirmed.status).toBe(304)
    expect(confirmed.etag).toBe(first.etag)
    // A browser without a tag still reads the newer fetchedAt.
    const full = await poll(server)
    expect(full.body.metadata.holdfast.fetchedAt).toBe(clock)
    expect(full.etag).toBe(first.etag)

    // Stale (the upstream fails): the tag differs, so the client learns of the stale bit.
    upstream.set({ status: 500, text: 'down' })
    clock += 10_000
    await source.refreshDetails()
    const stale = await poll(server, first.etag!)
    expect(stale.status).toBe(200)
    expect(stale.body.metadata.holdfast.stale).toBe(true)
    expect(stale.etag).not.toBe(first.etag)

    // Back, with a change: a new tag.
    upstream.set({ document: booleanFlags(3, 'off') })
    clock += 10_000
    await source.refreshDetails()
    const changed = await poll(server, first.etag!)
    expect(changed.status).toBe(200)
    expect(changed.body.metadata.holdfast.stale).toBe(false)
    expect(changed.etag).not.toBe(first.etag)
    expect(changed.etag).not.toBe(stale.etag)
  })

  it('--flags-url: the browser client itself revalidates with 304 across upstream confirmations', async () => {
    let clock = Date.now()
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const source = urlSourceFor(upstream, { pollIntervalMs: 3_600_000, now: () => clock })
    const server = await startServer({ flags: undefined, source })
    const statuses: number[] = []
    const client = createClient({
      url: server.url,
      context: { targetingKey: 'user-1' },
      storage: 'memory',
      refreshOnFocus: false,
      liveUpdates: false,
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        statuses.push(response.status)
        return response
      },
    })
    try {
      await client.start()
      for (let i = 0; i < 3; i++) {
        clock += 10_000
        await source.refreshDetails()
        await client.refresh()
      }
      // Before: [200, 200, 200, 200], the whole answer downloaded on every poll.
      expect(statuses).toEqual([200, 304, 304, 304])
      expect(client.getDetails('f0', false)).toMatchObject({ value: true, source: 'network', stale: false })
      expect(client.getStatus().state).toBe('ready')
    } finally {
      await client.close()
    }
  })

  it('--upstream: a browser polling an unchanged upstream through the relay gets 304', async () => {
    let clock = 1_800_000_000_000
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'f0', value: true, reason: 'STATIC', variant: 'on' }] }) })
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 2000, log: recordingLogger(), now: () => clock })
    const server = await startServer({ flags: undefined, source })
    const first = await poll(server)
    expect(first.status).toBe(200)
    clock += 10_000
    const asked = upstream.requests.length
    const again = await poll(server, first.etag!)
    // Asked again (and confirmed), not answered from what the relay held.
    expect(upstream.requests.length).toBe(asked + 1)
    expect(again.status).toBe(304)
    expect(again.etag).toBe(first.etag)

    // A change upstream is a new tag.
    upstream.set({ ofrep: () => ({ flags: [{ key: 'f0', value: false, reason: 'STATIC', variant: 'off' }] }) })
    clock += 10_000
    const changed = await poll(server, first.etag!)
    expect(changed.status).toBe(200)
    expect(changed.body.flags[0].value).toBe(false)
    expect(changed.etag).not.toBe(first.etag)

    // The upstream fails: the held answer goes out stale, under another tag.
    upstream.set({ status: 503, text: 'down' })
    clock += 10_000
    const stale = await poll(server, changed.etag!)
    expect(stale.status).toBe(200)
    expect(stale.body.metadata.holdfast.stale).toBe(true)
    expect(stale.etag).not.toBe(changed.etag)
  })

  it('--flags FILE / inline: an edit that leaves this user\'s answer as it was is a 304 for them', async () => {
    let clock = 1_800_000_000_000
    const flags = (extra: Record<string, unknown>) => ({ flags: { ...booleanFlags(2).flags, ...extra } }) as FlagdDefinitions
    const source = createStaticSource(flags({}), { log: recordingLogger(), now: () => clock })
    const server = await startServer({ flags: undefined, source })
    const first = await poll(server)
    clock += 10_000
    // Another user's rule is edited: a new version (and fetchedAt), the same answer for user-1.
    source.set(flags({ vip: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '===': [{ var: 'targetingKey' }, 'someone-else'] }, 'on', 'off'] } } }))
    expect((await poll(server)).body.flags.length).toBe(first.body.flags.length + 1)
    const second = await poll(server)
    clock += 10_000
    source.set(flags({ vip: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '===': [{ var: 'targetingKey' }, 'another-one'] }, 'on', 'off'] } } }))
    const confirmed = await poll(server, second.etag!)
    expect(confirmed.status).toBe(304)
  })
})
