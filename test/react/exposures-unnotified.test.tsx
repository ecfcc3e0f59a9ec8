// A hook exposes what it shows once the client's rule says it counts (CONTRACT §6), even when that
// turns without the flag changing: the hook must hear it, as `getValue` would log it.
import { expect, it } from 'vitest'
import { FlagProvider, createClient, useValue, type Bootstrap } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { createTestClient } from '@holdfast/react/testing'
import { clientOptions, startServer, track, type TestServer } from './testServer'

const fallback: Bootstrap = { context: { targetingKey: 'anyone' }, flags: [{ key: 'checkout', value: 'classic' }], fetchedAt: 0 }

function Checkout() {
  return <p>checkout {useValue('checkout', 'none')}</p>
}

const exposures = (server: TestServer) => server.events.filter((e) => e.type === 'exposure').map((e) => [e.targetingKey, e.value, e.source])

it('a switch (client.setContext) from a user shown the fallback during an outage: the next user, shown the same fallback once their cache was read, is exposed to it', async () => {
  const server = await startServer({ checkout: 'one-click' })
  server.mode = 'error'
  const client = track(createClient(clientOptions(server, { fallback, storage: 'memory', events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })))
  render(
    <FlagProvider client={client}>
      <Checkout />
    </FlagProvider>,
  )
  await waitFor(() => expect(client.getStatus().state).toBe('error'))
  expect(screen.getByText('checkout classic')).toBeTruthy()
  await act(async () => client.flush())
  expect(exposures(server)).toEqual([['alice', 'classic', 'fallback']])

  // The app logs another user in on its own client (a login handler).
  await act(async () => void (await client.setContext({ targetingKey: 'bob' })))
  expect(client.getContext().targetingKey).toBe('bob')
  expect(client.getStatus()).toMatchObject({ state: 'error', source: 'fallback', cacheRead: true })
  expect(screen.getByText('checkout classic')).toBeTruthy()
  // The client's rule: what is shown counts as bob's exposure now.
  expect(client.isExposable(client.getDetails('checkout', 'none', { exposure: false }))).toBe(true)
  await act(async () => client.flush())
  // What getValue('checkout') would log for bob now; before: nothing (the hook never re-read).
  expect(exposures(server)).toEqual([
    ['alice', 'classic', 'fallback'],
    ['bob', 'classic', 'fallback'],
  ])
})

it('the test client: a login (client.setContext) with the same values on screen is the new user\'s exposure, as getValue records it', async () => {
  const client = createTestClient({ flags: { checkout: 'classic' }, context: { targetingKey: 'alice' } })
  render(
    <FlagProvider client={client}>
      <Checkout />
    </FlagProvider>,
  )
  expect(screen.getByText('checkout classic')).toBeTruthy()
  act(() => void client.setContext({ targetingKey: 'bob' }))
  expect(screen.getByText('checkout classic')).toBeTruthy()
  // Before: only alice's (the hook kept alice's observation, no flag having moved).
  expect(client.exposures.map((e) => [e.targetingKey, e.key, e.value])).toEqual([
    ['alice', 'checkout', 'classic'],
    ['bob', 'checkout', 'classic'],
  ])
})

it('the test client: while no user is on the page (Status.paused) nothing shown is an exposure, as the real client logs none; the next login is', async () => {
  const client = createTestClient({ flags: { checkout: 'classic' }, context: { targetingKey: 'alice' }, status: { state: 'ready', paused: true } })
  render(
    <FlagProvider client={client}>
      <Checkout />
    </FlagProvider>,
  )
  expect(screen.getByText('checkout classic')).toBeTruthy()
  expect(client.getValue('checkout', 'none')).toBe('classic')
  // Before: alice's, twice over (the hook's and getValue's), for a page with no user.
  expect(client.exposures).toEqual([])
  // A login ends the pause, as the real client's setContext does.
  act(() => void client.setContext({ targetingKey: 'bob' }))
  expect(client.getStatus().paused).toBeUndefined()
  expect(client.exposures.map((e) => [e.targetingKey, e.key, e.value])).toEqual([['bob', 'checkout', 'classic']])
})
