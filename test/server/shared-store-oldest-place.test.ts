// Proxy mode with a store of one's own (`sharedStore`): an answer read back from a data dir that
// recorded no store version for it is written back at "the oldest place" (ecc018e), so any drop or
// answer whose place is known wins over it. A SharedStore's tickets need only be "newer than every
// version handed out before": a store of one's own may count them 1, 2, 3 (a SQL sequence, INCR).
// The oldest place must then be below the first ticket, or an upstream answer asked for with that
// ticket meets the stale answer at the same version: the store only renews its TTL ('refreshed'),
// keeps the stale one, and its writer counts its own shared.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { join } from 'node:path'
import { createFlagServer, createMemoryStore, type FlagServer, type FlagServerOptions, type SharedStore } from '@holdfast/server'
import { evaluate, recordingLogger, tempDir, waitFor } from './helpers'
import { holdingFetch, startUpstream } from './relay-fakes'
import { status } from './redis-fleet'

vi.setConfig({ testTimeout: 30_000 })

const open: FlagServer[] = []
afterEach(async () => {
  for (const server of open.splice(0)) await server.close()
})

const start = async (options: Partial<FlagServerOptions> & { fetch?: typeof fetch }) => {
  const server = await createFlagServer({ port: 0, maxEventLoopDelayMs: 0, logger: recordingLogger(), ...options } as FlagServerOptions)
  open.push(server)
  return server
}

// A store of one's own whose tickets count from 1, as a SQL sequence does (the rest: the memory store).
function countingStore(memory: SharedStore) {
  let last = 0
  const store = new Proxy(memory, {
    get(target, name, receiver) {
      if (name === 'ticket') return () => Promise.resolve({ ok: true as const, value: ++last })
      const value = Reflect.get(target, name, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { store, tickets: () => last }
}

const plan = (value: string) => ({ ofrep: () => ({ flags: [{ key: 'plan', value, reason: 'STATIC' }] }) })

async function ask(server: FlagServer) {
  const response = await evaluate(server, { targetingKey: 'victim' })
  return { status: response.status, value: ((await response.json()) as any).flags?.[0]?.value }
}

describe('proxy mode, a store of its own counting tickets from 1: an answer the data dir has no version for', () => {
  it("never outranks the upstream's answer asked for with the store's first ticket", async () => {
    const upstream = await startUpstream(plan('free'))
    const proxy = { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined } as const
    const dataDir = join(await tempDir(), 'data')
    // A relay without a store answers the user 'free' and saves it in its data dir (no store version).
    const a0 = await start({ ...proxy, dataDir })
    expect(await ask(a0)).toEqual({ status: 200, value: 'free' })
    await waitFor(async () => (await status(a0)).dataDir?.lastSavedAt !== undefined, 10_000)
    await a0.close()

    // The upstream now says 'pro'. Relay B, on a fresh store, asks it for the user with the store's
    // first ticket (1); the answer is slow.
    upstream.set(plan('pro'))
    const { store, tickets } = countingStore(createMemoryStore())
    const slow = holdingFetch()
    const b = await start({ ...proxy, sharedStore: { store }, fetch: slow.fetch })
    slow.hold()
    const asked = ask(b)
    await waitFor(() => slow.held() > 0, 5000)
    expect(tickets()).toBe(1)
    // Meanwhile the relay restarts from its data dir and writes 'free' back at the oldest place.
    const a = await start({ ...proxy, dataDir, sharedStore: { store } })
    const stored = async () => {
      const keys = await store.keys('context:', 10)
      const key = keys.ok ? keys.value[0] : undefined
      const doc = key === undefined ? undefined : await store.get(key)
      return doc?.ok ? doc.value : undefined
    }
    await waitFor(async () => (await stored()) !== undefined, 10_000)
    // B's answer ('pro', asked for after the data dir's was got) comes: it is served and shared.
    slow.release()
    expect(await asked).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await status(b)).redis?.unshared === 0, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    // The upstream goes down. The store holds 'pro', and a relay new to the fleet serves it, as
    // does the relay that wrote 'free' back. Before: 'pro' met 'free' at version 1, the store only
    // renewed 'free' (B counted 'pro' shared), and C and A served 'free' through the outage.
    upstream.set({ status: 503, text: 'down' })
    const c = await start({ ...proxy, sharedStore: { store } })
    expect([await ask(c), await ask(a), await ask(b)]).toEqual([
      { status: 200, value: 'pro' },
      { status: 200, value: 'pro' },
      { status: 200, value: 'pro' },
    ])
    expect((await stored())?.body).toContain('"pro"')
  })
})
