// A demanding app around the provider: props written inline (new objects every render), a user
// switch cut short by an unmount, two providers sharing one database, a flag whose value type
// changes between answers, and a component that throws under the provider. The client must send
// no extra request, loop no render, lose or double no event, and keep working.
import { Component, useEffect, useState, type ReactNode } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FlagProvider, useConfig, useFlagClient, useFlagDetails, useValue, type EvaluationContext, type FlagClient } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, uniqueStorageName } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

/** Lets pending microtasks and short timers run. */
const settle = (ms = 20) => act(() => new Promise((resolve) => setTimeout(resolve, ms)))

describe('props written inline', () => {
  it('a parent that re-renders 30 times with inline context, fallback, headers and defaults sends one request and renders no loop', async () => {
    const server = await startServer({ banner: { text: 'hello' } })
    const options = clientOptions(server)
    let childRenders = 0
    function Banner() {
      childRenders++
      return <p>{useConfig('banner', { text: 'DEFAULT' }).text}</p>
    }
    let bump: () => void = () => {}
    function App() {
      const [n, setN] = useState(0)
      bump = () => setN((x) => x + 1)
      return (
        <FlagProvider
          {...options}
          context={{ targetingKey: 'alice', plan: 'pro', tags: ['a', 'b'] }}
          fallback={{ context: { targetingKey: 'anyone' }, flags: [{ key: 'banner', value: { text: 'fallback' } }], fetchedAt: 0 }}
          headers={{ 'X-Render': String(n) }}
          events={{ url: server.eventsUrl }}
        >
          <Banner />
        </FlagProvider>
      )
    }
    render(<App />)
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    const before = childRenders
    for (let i = 0; i < 30; i++) act(() => bump())
    await settle()
    expect(server.requests).toEqual(['alice'])
    // The child re-renders with its parent (it is not memoised), once per parent render, no more.
    expect(childRenders - before).toBeLessThanOrEqual(30)
    expect(screen.getByRole('paragraph').textContent).toBe('hello')
  })
})

describe('a context change while the first fetch hangs', () => {
  it("shows the new user's values when they come; the old user's answer, released later, never shows", async () => {
    const server = await startServer({}, { alice: { greeting: 'hi alice' }, bob: { greeting: 'hi bob' } })
    const options = clientOptions(server)
    const shown = new Set<string>()
    function Greeting() {
      const greeting = useValue('greeting', 'DEFAULT')
      shown.add(greeting)
      return <p>{greeting}</p>
    }
    const app = (context: EvaluationContext) => (
      <FlagProvider {...options} context={context}>
        <Greeting />
      </FlagProvider>
    )
    server.mode = 'hang'
    const { rerender } = render(app({ targetingKey: 'alice' }))
    await waitFor(() => expect(server.requests).toEqual(['alice']))
    server.mode = 'ok' // alice's request stays held; bob's is answered
    rerender(app({ targetingKey: 'bob' }))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi bob'))
    server.release()
    await settle(50)
    expect(screen.getByRole('paragraph').textContent).toBe('hi bob')
    expect(shown).toEqual(new Set(['DEFAULT', 'hi bob']))
    expect(server.requests).toEqual(['alice', 'bob'])
  })
})

describe('an unmount during a user switch', () => {
  it('closes the client; the hanging answer, released later, is applied nowhere and nothing more is sent', async () => {
    const server = await startServer({}, { alice: { greeting: 'hi alice' }, bob: { greeting: 'hi bob' } })
    const options = clientOptions(server)
    const errors = vi.spyOn(console, 'error')
    let client: FlagClient | undefined
    function Greeting() {
      client = useFlagClient()
      return <p>{useValue('greeting', 'DEFAULT')}</p>
    }
    const app = (context: EvaluationContext) => (
      <FlagProvider {...options} context={context}>
        <Greeting />
      </FlagProvider>
    )
    const { rerender, unmount } = render(app({ targetingKey: 'alice' }))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi alice'))
    server.mode = 'hang'
    const close = vi.spyOn(client!, 'close')
    rerender(app({ targetingKey: 'bob' }))
    await waitFor(() => expect(server.requests).toEqual(['alice', 'bob']))
    unmount()
    await settle()
    expect(close).toHaveBeenCalledTimes(1)
    server.release()
    await settle(50)
    // The switch was aborted by close(): bob's late answer does not reach the closed client.
    expect(client!.getValue('greeting', 'DEFAULT')).not.toBe('hi bob')
    await client!.refresh()
    expect(server.requests).toEqual(['alice', 'bob'])
    expect(options.logger.errors).toEqual([])
    expect(errors).not.toHaveBeenCalled()
  })
})

describe('two providers with the same storageName in one page', () => {
  it('each shows its own user; every event of both reaches the sink exactly once', async () => {
    const server = await startServer({}, { alice: { greeting: 'hi alice' }, bob: { greeting: 'hi bob' } })
    const storageName = uniqueStorageName()
    const clients: Record<string, FlagClient> = {}
    function Greeting({ name }: { name: string }) {
      clients[name] = useFlagClient()
      return <p data-testid={name}>{useValue('greeting', 'DEFAULT')}</p>
    }
    const provider = (name: string) => (
      <FlagProvider {...clientOptions(server)} storageName={storageName} context={{ targetingKey: name }} events={{ url: server.eventsUrl, exposures: false }}>
        <Greeting name={name} />
      </FlagProvider>
    )
    render(
      <>
        {provider('alice')}
        {provider('bob')}
      </>,
    )
    await waitFor(() => expect(screen.getByTestId('alice').textContent).toBe('hi alice'))
    await waitFor(() => expect(screen.getByTestId('bob').textContent).toBe('hi bob'))
    for (let i = 0; i < 5; i++) {
      clients.alice.logEvent('alice-clicked', { value: i })
      clients.bob.logEvent('bob-clicked', { value: i })
    }
    await act(() => Promise.all([clients.alice.flush(), clients.bob.flush()]))
    await waitFor(() => expect(server.events.length).toBeGreaterThanOrEqual(10))
    await act(() => Promise.all([clients.alice.flush(), clients.bob.flush()]))
    await settle(100)
    const ids = server.events.map((e) => e.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(server.events.map((e) => `${e.targetingKey}:${e.name}:${e.value}`).sort()).toEqual(
      [0, 1, 2, 3, 4].flatMap((i) => [`alice:alice-clicked:${i}`, `bob:bob-clicked:${i}`]).sort(),
    )
  })
})

describe('a flag whose value type changes between answers', () => {
  it('shows the default with TYPE_MISMATCH while the type is wrong, the value again when it is right, with no loop and no exposure of the mismatch', async () => {
    const server = await startServer({ label: 'Buy' })
    const options = clientOptions(server, { events: { url: server.eventsUrl } })
    let renders = 0
    let client: FlagClient | undefined
    function Label() {
      renders++
      client = useFlagClient()
      const label = useValue('label', 'DEFAULT')
      const { errorCode } = useFlagDetails('label', 'DEFAULT')
      return <p>{`${label} ${errorCode ?? '-'}`}</p>
    }
    render(
      <FlagProvider {...options}>
        <Label />
      </FlagProvider>,
    )
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('Buy -'))
    server.flags = { label: 42 }
    await act(() => client!.refresh())
    expect(screen.getByRole('paragraph').textContent).toBe('DEFAULT TYPE_MISMATCH')
    server.flags = { label: { text: 'Buy' } }
    await act(() => client!.refresh())
    expect(screen.getByRole('paragraph').textContent).toBe('DEFAULT TYPE_MISMATCH')
    server.flags = { label: 'Buy now' }
    await act(() => client!.refresh())
    expect(screen.getByRole('paragraph').textContent).toBe('Buy now -')
    expect(renders).toBeLessThan(12)
    await act(() => client!.flush())
    await waitFor(() => expect(server.events.length).toBe(2))
    expect(server.events.map((e) => e.value)).toEqual(['Buy', 'Buy now'])
  })
})

describe('a component that throws in render under the provider', () => {
  class Boundary extends Component<{ children: ReactNode }, { failed: boolean }> {
    override state = { failed: false }
    static getDerivedStateFromError() {
      return { failed: true }
    }
    override render() {
      return this.state.failed ? <p data-testid="boundary">failed</p> : this.props.children
    }
  }

  it('an error boundary inside the provider catches it; the client keeps fetching and the rest of the tree keeps updating', async () => {
    const server = await startServer({ explode: false, greeting: 'hello' })
    vi.spyOn(console, 'error').mockImplementation(() => {})
    let client: FlagClient | undefined
    function Fragile() {
      if (useValue('explode', false)) throw new Error('boom')
      return <p data-testid="fragile">fine</p>
    }
    function Greeting() {
      client = useFlagClient()
      return <p data-testid="greeting">{useValue('greeting', 'DEFAULT')}</p>
    }
    render(
      <FlagProvider {...clientOptions(server)}>
        <Boundary>
          <Fragile />
        </Boundary>
        <Greeting />
      </FlagProvider>,
    )
    await waitFor(() => expect(screen.getByTestId('greeting').textContent).toBe('hello'))
    server.flags = { explode: true, greeting: 'hello' }
    await act(() => client!.refresh())
    expect(screen.getByTestId('boundary').textContent).toBe('failed')
    server.flags = { explode: true, greeting: 'hello again' }
    await act(() => client!.refresh())
    expect(screen.getByTestId('greeting').textContent).toBe('hello again')
    expect(client!.getStatus().state).toBe('ready')
  })

  it('a boundary outside the provider remounts it: the new provider starts a working client and the old one is closed', async () => {
    const server = await startServer({ greeting: 'hello' })
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const options = clientOptions(server)
    const seen: FlagClient[] = []
    let explode = true
    function Fragile() {
      const client = useFlagClient()
      useEffect(() => void seen.push(client), [client])
      const greeting = useValue<string>('greeting', 'DEFAULT')
      if (greeting === 'hello' && explode) throw new Error('boom')
      return <p data-testid="fragile">{greeting}</p>
    }
    class Resettable extends Component<{ children: ReactNode }, { failed: boolean }> {
      override state = { failed: false }
      static getDerivedStateFromError() {
        return { failed: true }
      }
      override render() {
        return this.state.failed ? (
          <button onClick={() => ((explode = false), this.setState({ failed: false }))}>retry</button>
        ) : (
          this.props.children
        )
      }
    }
    function App() {
      return (
        <Resettable>
          <FlagProvider {...options}>
            <Fragile />
          </FlagProvider>
        </Resettable>
      )
    }
    render(<App />)
    await waitFor(() => expect(screen.getByRole('button').textContent).toBe('retry'))
    await settle()
    act(() => screen.getByRole('button').click())
    await waitFor(() => expect(screen.getByTestId('fragile').textContent).toBe('hello'))
    expect(seen.at(-1)!.getStatus().state).toBe('ready')
  })
})
