// Holding the flag-dependent part of the page until the flags are known (issue 12 item 2): a
// returning user never sees the build-time fallback flash before their cached values, the hold is
// bounded, and it renders identically on the server. Also: a malformed `url` names <FlagProvider>.
import { useState } from 'react'
import { renderToString } from 'react-dom/server'
import { afterEach, expect, it, vi } from 'vitest'
import { FlagProvider, FlagsReady, createMemoryStorage, useGate, useValue, type Bootstrap, type FlagStorage } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

const fallback: Bootstrap = { context: { targetingKey: 'anyone' }, flags: [{ key: 'checkout', value: 'classic' }], fetchedAt: 0 }

function Checkout() {
  return <p>checkout {useValue('checkout', 'none')}</p>
}

/** Memory storage holding Alice's cache entry, whose reads wait for `release()`. */
async function slowCache(url: string) {
  const inner = createMemoryStorage()
  // Seed the cache the way a previous page would have: through a client.
  const { createClient } = await import('@holdfast/react')
  const seed = createClient({ url, context: { targetingKey: 'alice' }, storage: inner })
  await seed.start()
  await seed.close()
  let release: () => void = () => {}
  const gate = new Promise<void>((r) => (release = r))
  const storage: FlagStorage = { ...inner, get: async (key) => (await gate, inner.get(key)) }
  return { storage, release }
}

it('<FlagsReady> holds the page while the cache is read, so the fallback never flashes', async () => {
  const server = await startServer({ checkout: 'one-click' })
  const { storage, release } = await slowCache(server.url)
  server.mode = 'hang'
  const seen: string[] = []
  function Recorder() {
    const text = `checkout ${useValue('checkout', 'none')}`
    seen.push(text)
    return <p>{text}</p>
  }
  render(
    <FlagProvider {...clientOptions(server, { fallback, storage })}>
      <FlagsReady timeoutMs={5000} fallback={<p>loading</p>}>
        <Recorder />
      </FlagsReady>
    </FlagProvider>,
  )
  expect(screen.getByText('loading')).toBeTruthy()
  await act(async () => {
    release()
  })
  await waitFor(() => expect(screen.getByText('checkout one-click')).toBeTruthy())
  expect(seen).not.toContain('checkout classic')
  server.release()
})

it('<FlagsReady> is bounded: a cache that never answers holds the page for timeoutMs only', async () => {
  const server = await startServer({ checkout: 'one-click' })
  server.mode = 'hang'
  const stuck: FlagStorage = { ...createMemoryStorage(), get: () => new Promise(() => {}) }
  render(
    <FlagProvider {...clientOptions(server, { fallback, storage: stuck })}>
      <FlagsReady timeoutMs={50} fallback={<p>loading</p>}>
        <Checkout />
      </FlagsReady>
    </FlagProvider>,
  )
  expect(screen.getByText('loading')).toBeTruthy()
  await waitFor(() => expect(screen.getByText('checkout classic')).toBeTruthy())
  server.release()
})

it('<FlagsReady> with a timeoutMs past the 32-bit timers (1e10) holds the page for the default 100 ms, not 0', async () => {
  // Browsers and Node fire a setTimeout over 2^31 - 1 ms at once: the fallback would flash.
  const server = await startServer({ checkout: 'one-click' })
  server.mode = 'hang'
  const stuck: FlagStorage = { ...createMemoryStorage(), get: () => new Promise(() => {}) }
  // On a fake clock: a 30 ms real sleep then "still loading" failed when a busy machine ran the
  // sleep's timer after the 100 ms one. Only setTimeout is faked; nothing else waits on it here.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  try {
    render(
      <FlagProvider {...clientOptions(server, { fallback, storage: stuck })}>
        <FlagsReady timeoutMs={1e10} fallback={<p>loading</p>}>
          <Checkout />
        </FlagsReady>
      </FlagProvider>,
    )
    await act(async () => void vi.advanceTimersByTime(99))
    expect(screen.getByText('loading')).toBeTruthy()
    await act(async () => void vi.advanceTimersByTime(1))
    expect(screen.getByText('checkout classic')).toBeTruthy()
  } finally {
    vi.useRealTimers()
  }
  server.release()
})

it('<FlagsReady> renders its children at once with a bootstrap, on the server and in the browser alike', async () => {
  const server = await startServer({ banner: true })
  const bootstrap: Bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'banner', value: true }], fetchedAt: Date.now() }
  function Banner() {
    return <h1>{useGate('banner') ? 'Welcome back' : 'Hello'}</h1>
  }
  const tree = (options: object) => (
    <FlagProvider {...clientOptions(server, options)}>
      <FlagsReady fallback={<p>loading</p>}>
        <Banner />
      </FlagsReady>
    </FlagProvider>
  )
  expect(renderToString(tree({ bootstrap }))).toContain('Welcome back')
  // Without one, the server renders the placeholder, as the first browser render will.
  expect(renderToString(tree({}))).toContain('loading')
})

it('a url without a scheme, or the endpoint path as url, throws a clear error naming <FlagProvider>', () => {
  vi.spyOn(console, 'error').mockImplementation(() => {})
  const onError = (event: ErrorEvent) => event.preventDefault()
  window.addEventListener('error', onError)
  try {
    for (const [url, words] of [
      ['flags.example.com', /<FlagProvider>.*no http:\/\/ or https:\/\/ scheme/],
      ['https://flags.example.com/ofrep/v1/evaluate/flags', /<FlagProvider>.*endpoint path.*https:\/\/flags\.example\.com/],
      ['', /<FlagProvider>.*`url` is missing/],
    ] as const) {
      expect(() =>
        render(
          <FlagProvider url={url} context={{ targetingKey: 'a' }}>
            <p>x</p>
          </FlagProvider>,
        ),
      ).toThrow(words)
    }
  } finally {
    window.removeEventListener('error', onError)
  }
})

it('<FlagsReady> holds only the first load: a later user switch keeps the page on screen', async () => {
  const server = await startServer({ checkout: 'one-click' }, { bob: { checkout: 'classic-bob' } })
  let switchTo: (user: string) => void = () => {}
  // Every cache read takes 200 ms: long enough to see a placeholder come back, if it did.
  const inner = createMemoryStorage()
  const slowReads: FlagStorage = { ...inner, get: async (key) => (await new Promise((r) => setTimeout(r, 200)), inner.get(key)) }
  const options = clientOptions(server, { storage: slowReads })
  function Root() {
    const [user, setUser] = useState('alice')
    switchTo = setUser
    return (
      <FlagProvider {...options} context={{ targetingKey: user }}>
        <FlagsReady timeoutMs={5000} fallback={<p>loading</p>}>
          <Checkout />
        </FlagsReady>
      </FlagProvider>
    )
  }
  render(<Root />)
  await waitFor(() => expect(screen.getByText('checkout one-click')).toBeTruthy())
  server.mode = 'hang'
  await act(async () => switchTo('bob'))
  // Bob's values are on their way: the previous values stay visible, the placeholder never returns.
  expect(screen.queryByText('loading')).toBeNull()
  expect(screen.getByText('checkout one-click')).toBeTruthy()
  server.release()
  await waitFor(() => expect(screen.getByText('checkout classic-bob')).toBeTruthy())
})

it('a fallback value rendered by a hook while the cache is read is not logged as an exposure', async () => {
  const server = await startServer({ checkout: 'one-click' })
  const { storage, release } = await slowCache(server.url)
  server.mode = 'hang'
  const options = clientOptions(server, { fallback, storage, events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })
  const { createClient } = await import('@holdfast/react')
  const client = track(createClient(options))
  render(
    <FlagProvider client={client}>
      <Checkout />
    </FlagProvider>,
  )
  // On screen: the fallback, committed, while the cache is read. Not an exposure.
  await waitFor(() => expect(screen.getByText('checkout classic')).toBeTruthy())
  await act(async () => new Promise((r) => setTimeout(r, 50)))
  expect(client.getEventStats().queued).toBe(0)
  await act(async () => release())
  await waitFor(() => expect(screen.getByText('checkout one-click')).toBeTruthy())
  await waitFor(() => expect(client.getEventStats().queued).toBe(1))
  await act(async () => client.flush())
  expect(server.events.filter((e) => e.type === 'exposure').map((e) => [e.value, e.source])).toEqual([['one-click', 'cache']])
  server.release()
})
