// The owed clear (8f1bd9a) and the retry racing, settled by hand: a clearCache() that fails on the
// storage given up on while that storage's retry is clearing what was owed, before it goes back.
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, throughTimeout, uniqueStorageName } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: false, variant: 'off' }], '"e1"'))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

test("a clearCache() failing on the given-up storage while its retry clears what was owed brings no user back as 'cache'", async () => {
  const base = createMemoryStorage()
  let mode: 'pass' | 'reject' | 'hold' = 'pass'
  const held: { resolve: () => void; reject: (e: Error) => void }[] = []
  const storage: FlagStorage = {
    ...base,
    keys: () =>
      mode == 'pass' ? base.keys() : mode == 'reject' ? Promise.reject(new Error('locked')) : new Promise<string[]>((resolve, reject) => held.push({ resolve: () => void base.keys().then(resolve), reject })),
  }
  const name = uniqueStorageName('clear-owed-race')
  const make = (targetingKey: string) => {
    const clock = createManualClock()
    const client = createClient({ url: server.url, context: { targetingKey }, storage, storageName: name, logger: createTestLogger(), clock, requestTimeoutMs: 300 })
    clients.push(client)
    return { client, startHung: () => throughTimeout(clock, server, 300, () => client.start()) }
  }
  const { client } = make('alice')
  await client.start()
  mode = 'reject'
  await client.clearCache() // alice logs out: failed, owed
  mode = 'hold'
  const switched = client.setContext({ targetingKey: 'bob' }) // the retry: its owed clear waits on keys()
  await vi.waitFor(() => expect(held).toHaveLength(1))
  await switched
  const logout = client.clearCache() // bob logs out: its clear of the given-up storage waits too
  await vi.waitFor(() => expect(held).toHaveLength(2))
  held[1].reject(new Error('locked')) // fails, owing the clear again
  await logout
  held[0].resolve() // the retry's clear done: it goes back
  await vi.waitFor(() => expect(client.getStatus().storage).toBe('indexeddb'))
  mode = 'pass'
  await client.close()

  server.always('hang')
  for (const user of ['alice', 'bob']) {
    const { client: reloaded, startHung } = make(user)
    await startHung()
    expect(reloaded.getDetails('kill', true)).toMatchObject({ value: true, source: 'default' })
  }
})
