// What the provider does with clients over its life: one client and one start under StrictMode,
// no listener left on window or document after unmount, its own client closed, a passed-in
// client never closed.
import * as React from 'react'
import { StrictMode, type ReactNode } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FlagProvider, createClient, useFlagClient, useValue, type ClientOptions, type FlagClient } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

/** Listeners added to and removed from window and document while the test runs. */
function watchListeners() {
  const live = new Set<string>()
  const ids = new WeakMap<object, number>()
  let next = 0
  const id = (listener: unknown) => {
    if (typeof listener !== 'object' && typeof listener !== 'function') return -1
    if (!ids.has(listener as object)) ids.set(listener as object, ++next)
    return ids.get(listener as object)
  }
  for (const [name, target] of [
    ['window', window],
    ['document', document],
  ] as const) {
    const add = target.addEventListener.bind(target)
    const remove = target.removeEventListener.bind(target)
    vi.spyOn(target, 'addEventListener').mockImplementation((type, listener, options) => {
      add(type, listener, options)
      // React DOM's own: attached to the document with the first root and kept for its life.
      if (type === 'selectionchange') return
      live.add(`${name}:${type}:${id(listener)}`)
    })
    vi.spyOn(target, 'removeEventListener').mockImplementation((type, listener, options) => {
      live.delete(`${name}:${type}:${id(listener)}`)
      remove(type, listener, options)
    })
  }
  return { live }
}

/** Lets the provider's deferred close (a microtask after unmount) and the client's close settle. */
const settle = () => act(() => new Promise((resolve) => setTimeout(resolve, 20)))

function Greeting({ onClient }: { onClient?: (client: FlagClient) => void }): ReactNode {
  const client = useFlagClient()
  React.useEffect(() => {
    onClient?.(client)
  }, [client, onClient])
  return <p>{useValue('greeting', 'DEFAULT')}</p>
}

describe('a provider that creates its client', () => {
  it('under StrictMode starts one client once, and leaves no listener after unmount', async () => {
    const server = await startServer({ greeting: 'hello' })
    const options = clientOptions(server, { refreshIntervalMs: 60_000, events: { url: server.eventsUrl } })
    const listeners = watchListeners()
    const committed = new Set<FlagClient>()
    const { unmount } = render(
      <StrictMode>
        <FlagProvider {...options}>
          <Greeting onClient={(client) => committed.add(client)} />
        </FlagProvider>
      </StrictMode>,
    )
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    await settle()
    expect(server.requests).toEqual(['alice'])
    expect(committed.size).toBe(1)
    const [client] = committed
    expect(client.getStatus().state).toBe('ready')
    // The client is alive: it listens (focus, visibility, …) and answers refresh.
    expect([...listeners.live].map((key) => key.split(':').slice(0, 2).join(':')).sort()).toEqual(
      expect.arrayContaining(['document:visibilitychange', 'window:focus', 'window:online']),
    )
    await act(() => client.refresh())
    expect(server.requests).toEqual(['alice', 'alice'])

    const close = vi.spyOn(client, 'close')
    unmount()
    await settle()
    expect(close).toHaveBeenCalledTimes(1)
    expect([...listeners.live]).toEqual([])
    // Closed for good: no more requests, whatever asks.
    await client.refresh()
    expect(server.requests).toEqual(['alice', 'alice'])
  })

  it('closes the client it created when it unmounts, not before', async () => {
    const server = await startServer({ greeting: 'hello' })
    let client: FlagClient | undefined
    function App({ show }: { show: boolean }) {
      return show ? (
        <FlagProvider {...clientOptions(server)}>
          <Greeting onClient={(c) => (client = c)} />
        </FlagProvider>
      ) : null
    }
    const { rerender } = render(<App show />)
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    const close = vi.spyOn(client!, 'close')
    rerender(<App show />)
    await settle()
    expect(close).not.toHaveBeenCalled()
    rerender(<App show={false} />)
    await settle()
    expect(close).toHaveBeenCalledTimes(1)
  })

  it('reads options once: re-rendering with new option objects keeps the one client', async () => {
    const server = await startServer({ greeting: 'hello' })
    const seen = new Set<FlagClient>()
    const base = clientOptions(server)
    const app = (n: number) => (
      <FlagProvider {...base} headers={{ 'X-Render': String(n) }}>
        <Greeting onClient={(c) => seen.add(c)} />
      </FlagProvider>
    )
    const { rerender } = render(app(1))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    rerender(app(2))
    rerender(app(3))
    await settle()
    expect(seen.size).toBe(1)
    expect(server.requests).toEqual(['alice'])
  })

  it('comes back with a working client when a hidden <Activity> is shown again (React 19)', async ({ skip }) => {
    const Activity = (React as unknown as { Activity?: React.ComponentType<{ mode: 'visible' | 'hidden'; children: ReactNode }> }).Activity
    if (!Activity) return skip()
    const server = await startServer({ greeting: 'hello' })
    const options = clientOptions(server)
    const clients: FlagClient[] = []
    const app = (mode: 'visible' | 'hidden') => (
      <Activity mode={mode}>
        <FlagProvider {...options}>
          <Greeting onClient={(c) => clients.push(c)} />
        </FlagProvider>
      </Activity>
    )
    const listeners = watchListeners()
    const { rerender } = render(app('visible'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    rerender(app('hidden'))
    await settle()
    expect([...listeners.live]).toEqual([])
    server.flags = { greeting: 'hello again' }
    rerender(app('visible'))
    // The replacement starts from the old client's values (no flash of the default), then fetches.
    expect(screen.getByRole('paragraph').textContent).toBe('hello')
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello again'))
    expect(new Set(clients).size).toBe(2)
    expect(clients.at(-1)!.getStatus().state).toBe('ready')
    expect(server.requests).toEqual(['alice', 'alice'])
    expect(options.logger.warnings).toEqual([])
  })
})

describe('a logout while a hidden <Activity> keeps the provider (React 19)', () => {
  it('shown again after the context lost its targetingKey: no throw, defaults, nothing asked for the user who left', async ({ skip }) => {
    // Before: the replacement for the client closed on hide was created from the latest props,
    // whose context had no targetingKey, and createClient threw out of the effect: the app's tree
    // went down, where the same props on a provider that stayed shown only stand in.
    const Activity = (React as unknown as { Activity?: React.ComponentType<{ mode: 'visible' | 'hidden'; children: ReactNode }> }).Activity
    if (!Activity) return skip()
    const server = await startServer({ greeting: 'hello' })
    const options = clientOptions(server)
    const clients: FlagClient[] = []
    const app = (mode: 'visible' | 'hidden', user?: string) => (
      <Activity mode={mode}>
        <FlagProvider {...options} context={{ targetingKey: user } as ClientOptions['context']}>
          <Greeting onClient={(c) => clients.push(c)} />
        </FlagProvider>
      </Activity>
    )
    const { rerender } = render(app('visible', 'alice'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    rerender(app('hidden', 'alice'))
    await settle()
    rerender(app('hidden')) // logged out elsewhere while hidden
    await settle()
    const thrown: unknown[] = []
    const onError = (event: ErrorEvent) => (thrown.push(event.error), event.preventDefault())
    window.addEventListener('error', onError)
    try {
      rerender(app('visible'))
      await settle()
    } finally {
      window.removeEventListener('error', onError)
    }
    expect(thrown).toEqual([])
    expect(screen.getByRole('paragraph').textContent).toBe('DEFAULT')
    expect(server.requests).toEqual(['alice'])
    // The next user is served by the replacement.
    server.flags = { greeting: 'hello bob' }
    rerender(app('visible', 'bob'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello bob'))
    expect(server.requests).toEqual(['alice', 'bob'])
  })
})

describe('a provider given a client', () => {
  it('starts it once under StrictMode and never closes it', async () => {
    const server = await startServer({ greeting: 'hello' })
    const client = track(createClient(clientOptions(server)))
    const close = vi.spyOn(client, 'close')
    const start = vi.spyOn(client, 'start')
    const { unmount } = render(
      <StrictMode>
        <FlagProvider client={client}>
          <Greeting />
        </FlagProvider>
      </StrictMode>,
    )
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    expect(start.mock.calls.length).toBeGreaterThan(0)
    expect(server.requests).toEqual(['alice'])
    unmount()
    await settle()
    expect(close).not.toHaveBeenCalled()
    // Still the app's to use.
    server.flags = { greeting: 'still here' }
    await client.refresh()
    expect(client.getValue('greeting', '')).toBe('still here')
  })
})
