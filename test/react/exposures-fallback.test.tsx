// A hook re-reads its flag only when that flag changes. Whether what it shows counts as an
// exposure also depends on the status (a fallback stands in only while the cache is read; the
// previous user's values only until the new user's attempt ends), which can move without the flag
// changing: the exposure must follow the status too.
import { useState } from 'react'
import { afterEach, expect, it, vi } from 'vitest'
import { FlagProvider, createClient, useValue, type Bootstrap } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

const fallback: Bootstrap = { context: { targetingKey: 'anyone' }, flags: [{ key: 'checkout', value: 'classic' }], fetchedAt: 0 }

function Checkout() {
  return <p>checkout {useValue('checkout', 'none')}</p>
}

it('a fallback value on screen for a first visit with the server down is logged as an exposure once the cache was read', async () => {
  const server = await startServer({ checkout: 'one-click' })
  server.mode = 'error'
  const client = track(
    createClient(clientOptions(server, { fallback, storage: 'memory', events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })),
  )
  render(
    <FlagProvider client={client}>
      <Checkout />
    </FlagProvider>,
  )
  expect(screen.getByText('checkout classic')).toBeTruthy()
  await waitFor(() => expect(client.getStatus().state).toBe('error'))
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  // What the user saw all along, and will see until the server is back: the fallback. The same
  // read through the client (plain JS) is an exposure; the hook's must be one too.
  expect(screen.getByText('checkout classic')).toBeTruthy()
  await act(async () => client.flush())
  // Before: nothing — the hook kept the observation it took while the cache was being read.
  expect(server.events.filter((e) => e.type === 'exposure').map((e) => [e.value, e.source])).toEqual([['classic', 'fallback']])
})

it("a component that re-renders while the new user's answer is out still exposes that user's value when it equals the previous user's", async () => {
  const server = await startServer({ checkout: 'one-click' })
  const client = track(createClient(clientOptions(server, { storage: 'memory', events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })))
  let bump = () => {}
  function Page() {
    const [n, setN] = useState(0)
    bump = () => setN(n + 1)
    return <Checkout key="one" />
  }
  const app = (targetingKey: string) => (
    <FlagProvider client={client} context={{ targetingKey }}>
      <Page />
    </FlagProvider>
  )
  const { rerender } = render(app('alice'))
  await waitFor(() => expect(screen.getByText('checkout one-click')).toBeTruthy())
  server.mode = 'hang'
  rerender(app('bob'))
  await waitFor(() => expect(server.requests).toEqual(['alice', 'bob']))
  // Anything re-rendering the reader meanwhile (a parent's state, a timer): alice's value, still
  // on screen, only stands in for bob.
  act(() => bump())
  await act(async () => server.release())
  await waitFor(() => expect(client.getStatus().state).toBe('ready'))
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  await act(async () => client.flush())
  // Before: bob's exposure was never logged — the re-render took alice's stand-in for bob's value.
  expect(server.events.filter((e) => e.type === 'exposure').map((e) => [e.targetingKey, e.value])).toEqual([
    ['alice', 'one-click'],
    ['bob', 'one-click'],
  ])
})
