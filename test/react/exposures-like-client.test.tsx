// A hook logs exactly the exposures `getGate`/`getValue` would for what it shows (CONTRACT §6):
// only the previous user's stand-ins and a fallback shown while the cache is still read are left out.
import { afterEach, expect, it } from 'vitest'
import { FlagProvider, createClient, useValue, type Bootstrap, type FlagClient } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track, type TestServer } from './testServer'

let servers: TestServer[] = []
afterEach(() => {
  for (const s of servers) s.release()
  servers = []
})

const fallback: Bootstrap = { context: { targetingKey: 'anyone' }, flags: [{ key: 'checkout', value: 'classic' }], fetchedAt: 0 }

function Checkout() {
  return <p>checkout {useValue('checkout', 'none')}</p>
}

const exposures = (server: TestServer) => server.events.filter((e) => e.type === 'exposure').map((e) => [e.targetingKey, e.value, e.source])

async function hooked(server: TestServer, options: object) {
  const client = track(createClient(clientOptions(server, { storage: 'memory', events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false, ...options })))
  return client
}

async function shown(client: FlagClient) {
  render(
    <FlagProvider client={client}>
      <Checkout />
    </FlagProvider>,
  )
  await waitFor(() => expect(client.getStatus().cacheRead).toBe(true))
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  expect(screen.getByText('checkout classic')).toBeTruthy()
  await act(async () => client.flush())
}

it('with a fallback and an empty bootstrap, the fallback on screen once the cache was read (first answer still out) is logged as getValue would', async () => {
  const server = await startServer({ checkout: 'one-click' })
  servers.push(server)
  server.mode = 'hang'
  const bootstrap: Bootstrap = { context: { targetingKey: 'alice' }, flags: [], fetchedAt: Date.now() }
  // What plain JS sees for the same read: an exposure.
  const plain = await hooked(server, { fallback, bootstrap })
  // Not awaited: start() resolves when the first attempt settles, and this one is held.
  void plain.start()
  await waitFor(() => expect(plain.getStatus().cacheRead).toBe(true))
  expect(plain.getValue('checkout', 'none')).toBe('classic')
  await plain.flush()
  expect(exposures(server)).toEqual([['alice', 'classic', 'fallback']])
  server.events.length = 0

  const client = await hooked(server, { fallback, bootstrap, storageName: 'another' })
  await shown(client)
  // Before: nothing until an answer or a failure came (a page closed meanwhile lost it).
  expect(exposures(server)).toEqual([['alice', 'classic', 'fallback']])
})

it('with a fallback alone, the fallback on screen once the cache was read (first answer still out) is logged, as getValue would', async () => {
  const server = await startServer({ checkout: 'one-click' })
  servers.push(server)
  server.mode = 'hang'
  const client = await hooked(server, { fallback })
  await shown(client)
  expect(exposures(server)).toEqual([['alice', 'classic', 'fallback']])
})

it('before start() (the first commit runs its effects before the provider starts the client), a bootstrap value on screen is logged, as getValue would', async () => {
  const server = await startServer({ checkout: 'one-click' })
  servers.push(server)
  server.mode = 'hang'
  const bootstrap: Bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'checkout', value: 'classic' }], fetchedAt: Date.now() }
  const client = await hooked(server, { fallback: { ...fallback, flags: [{ key: 'checkout', value: 'other' }] }, bootstrap })
  await shown(client)
  expect(exposures(server)).toEqual([['alice', 'classic', 'bootstrap']])
})
