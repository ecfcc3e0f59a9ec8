// A hook re-reads its flag only when that flag changes. Whether what it shows counts as an
// exposure also depends on the status (a fallback stands in only while the cache is read; the
// previous user's values only until the new user's attempt ends), which can move without the flag
// changing: the exposure must follow the status too.
import { useState } from 'react'
import { afterEach, expect, it, vi } from 'vitest'
import { FlagProvider, createClient, useValue, type Bootstrap } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track, variantOf } from './testServer'

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

it("the new user's value is logged when it equals the fallback the previous user was shown while his first answer was out", async () => {
  // The build-time snapshot of the same server: same value, same variant.
  const snapshot: Bootstrap = { ...fallback, flags: [{ key: 'checkout', value: 'classic', variant: variantOf('classic') }] }
  const server = await startServer({ checkout: 'classic' })
  server.mode = 'hang'
  const client = track(
    createClient(clientOptions(server, { fallback: snapshot, storage: 'memory', events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })),
  )
  const app = (targetingKey: string) => (
    <FlagProvider client={client} context={{ targetingKey }}>
      <Checkout />
    </FlagProvider>
  )
  // A first visit: the fallback on screen for alice once the cache was read, her answer still out.
  const { rerender } = render(app('alice'))
  await waitFor(() => expect(client.getStatus().cacheRead).toBe(true))
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  // She signs in as bob (nothing cached for him): the fallback alice saw stands in while his answer is out.
  rerender(app('bob'))
  await waitFor(() => expect(server.requests).toEqual(['alice', 'bob']))
  await waitFor(() => expect(client.getStatus().cacheRead).toBe(true))
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  await act(async () => server.release())
  await waitFor(() => expect(client.getDetails('checkout', 'none', { exposure: false }).source).toBe('network'))
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  expect(screen.getByText('checkout classic')).toBeTruthy()
  await act(async () => client.flush())
  // Before: only alice's — the hook took the fallback on screen for bob's own value (the status says
  // `fallback`), the client refused it as alice's, and bob's answer, the same value and variant, was
  // never logged. The fallback is any user's: bob saw it once his cache was read, as alice did.
  expect(server.events.filter((e) => e.type === 'exposure').map((e) => [e.targetingKey, e.value])).toEqual([
    ['alice', 'classic'],
    ['bob', 'classic'],
  ])
})

it('a fallback value shown beside a bootstrap before the cache was read is logged once the server confirms it, the same value and variant', async () => {
  // The server-rendered bootstrap lacks the banner (a per-flag error at render time); the build-time
  // fallback has it, with the value and variant the server answers.
  const server = await startServer({ checkout: 'one-click', banner: 'spring' })
  const bootstrap: Bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'checkout', value: 'one-click', variant: variantOf('one-click') }], fetchedAt: Date.now() }
  const snapshot: Bootstrap = { ...fallback, flags: [{ key: 'banner', value: 'spring', variant: variantOf('spring') }] }
  const client = track(
    createClient(clientOptions(server, { bootstrap, fallback: snapshot, storage: 'memory', events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })),
  )
  function Banner() {
    return <p>banner {useValue('banner', 'none')}</p>
  }
  render(
    <FlagProvider client={client}>
      <Banner />
    </FlagProvider>,
  )
  expect(screen.getByText('banner spring')).toBeTruthy()
  await waitFor(() => expect(client.getDetails('banner', 'none', { exposure: false }).source).toBe('network'))
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  await act(async () => client.flush())
  expect(screen.getByText('banner spring')).toBeTruthy()
  // Before: nothing — the hook took the fallback for exposable before the cache was read (the status
  // said ready, from the bootstrap), the client refused it, and the server's equal value kept that observation.
  expect(server.events.filter((e) => e.type === 'exposure').map((e) => [e.targetingKey, e.flagKey, e.value])).toEqual([['alice', 'banner', 'spring']])
})
