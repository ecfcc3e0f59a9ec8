// Exposures from hooks are logged after commit, never during render, and once per (user, flag,
// value, variant) even under StrictMode, with several readers of one flag, and across re-renders.
import { StrictMode, Suspense, useState } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  FlagProvider,
  createClient,
  useConfig,
  useFlagDetails,
  useGate,
  useValue,
  useFlagClient,
  type Details,
  type FlagClient,
  type EvaluationContext,
  type HoldfastEvent,
} from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

function exposures(events: HoldfastEvent[]) {
  return events
    .filter((event) => event.type === 'exposure')
    .map((event) => `${event.targetingKey} ${event.flagKey}=${JSON.stringify(event.value)}`)
    .sort()
}

describe('exposures from hooks', () => {
  it('are logged after commit, once per user and value, under StrictMode with several readers', async () => {
    const server = await startServer({ beta: true, tier: 'gold', layout: { cols: 2 } }, { bob: { tier: 'silver' } })
    const client = track(
      createClient(clientOptions(server, { events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })),
    )
    // Every exposure must describe what is already on screen: the DOM is the proof of commit.
    const onScreenAtExposure: boolean[] = []
    const logExposure = client.logExposure
    const spy = vi.spyOn(client, 'logExposure').mockImplementation((details: Details<unknown>) => {
      onScreenAtExposure.push(document.body.textContent!.includes(`${details.key}=${JSON.stringify(details.value)}`))
      logExposure(details)
    })
    let rerenderAll = () => {}
    function Flags() {
      const [n, setN] = useState(0)
      rerenderAll = () => setN(n + 1)
      const beta = useGate('beta')
      const tier = useValue('tier', 'none')
      const tierAgain = useFlagDetails('tier', 'none').value
      const layout = useConfig('layout')
      return (
        <p>
          {`beta=${JSON.stringify(beta)} tier=${JSON.stringify(tier)} again=${tierAgain} layout=${JSON.stringify(layout)} ${n}`}
        </p>
      )
    }
    const app = (context: EvaluationContext) => (
      <StrictMode>
        <FlagProvider client={client} context={context}>
          <Flags />
          <Flags />
        </FlagProvider>
      </StrictMode>
    )
    const { rerender } = render(app({ targetingKey: 'alice' }))
    // Before values arrive the defaults show: nothing is exposed for a default.
    expect(spy.mock.calls.every(([details]) => details.source === 'default')).toBe(true)
    await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toContain('tier="gold"'))
    act(() => rerenderAll())
    await act(() => client.flush())
    expect(exposures(server.events)).toEqual(['alice beta=true', 'alice layout={"cols":2}', 'alice tier="gold"'])

    // A changed value is a new exposure; unchanged ones are not repeated.
    server.flags = { ...server.flags, beta: false }
    await act(() => client.refresh())
    await act(() => client.flush())
    expect(exposures(server.events)).toEqual(['alice beta=false', 'alice beta=true', 'alice layout={"cols":2}', 'alice tier="gold"'])

    // Another user: exposed to their own values once they are on screen; the previous user's
    // values that stand in meanwhile are exposed to nobody.
    server.mode = 'hang'
    rerender(app({ targetingKey: 'bob' }))
    await waitFor(() => expect(server.requests.at(-1)).toBe('bob'))
    await act(() => client.flush())
    expect(server.events.filter((event) => event.targetingKey === 'bob')).toEqual([])
    await act(async () => server.release())
    await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toContain('tier="silver"'))
    await act(() => client.flush())
    expect(exposures(server.events).filter((line) => line.startsWith('bob'))).toEqual([
      'bob beta=false',
      'bob layout={"cols":2}',
      'bob tier="silver"',
    ])
    expect(onScreenAtExposure.length).toBeGreaterThan(0)
    expect(onScreenAtExposure.every(Boolean)).toBe(true)
  })

  it('never happen during render: a render that is thrown away exposes nothing', async () => {
    const server = await startServer({ beta: true })
    const client = track(createClient(clientOptions(server, { events: { url: server.eventsUrl } })))
    await client.start()
    const logExposure = vi.spyOn(client, 'logExposure')
    let rendered = 0
    function Throws(): never {
      rendered++
      useGate('beta')
      throw new Promise(() => {}) // suspends forever: this render never commits
    }
    render(
      <FlagProvider client={client}>
        <Suspense>
          <Throws />
        </Suspense>
      </FlagProvider>,
    )
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)))
    expect(rendered).toBeGreaterThan(0)
    expect(logExposure).not.toHaveBeenCalled()
    // What the events sink sees, however the exposure would be logged (an evaluation with exposures
    // on, inside the render, logs one without calling logExposure): nothing queued, nothing sent.
    expect(client.getEventStats().queued).toBe(0)
    await client.flush()
    expect(exposures(server.events)).toEqual([])
  })

  it('once per page session even when the provider is remounted (key={user} for each user, as the Next.js example does): A, B, A again logs A once', async () => {
    const server = await startServer({ beta: true }, { bob: { beta: false } })
    const options = clientOptions(server, { events: { url: server.eventsUrl, flushIntervalMs: 60_000 } })
    let client: FlagClient | undefined
    function Beta() {
      client = useFlagClient()
      return <p>{`beta=${useGate('beta')}`}</p>
    }
    const app = (user: string) => (
      <FlagProvider key={user} {...options} context={{ targetingKey: user }}>
        <Beta />
      </FlagProvider>
    )
    const { rerender } = render(app('alice'))
    for (const [user, shown] of [['alice', 'beta=true'], ['bob', 'beta=false'], ['alice', 'beta=true']]) {
      rerender(app(user))
      await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe(shown))
      await waitFor(() => expect(client!.getStatus().state).toBe('ready'))
      await act(() => new Promise((resolve) => setTimeout(resolve, 20)))
      await act(() => client!.flush())
    }
    expect(exposures(server.events)).toEqual(['alice beta=true', 'bob beta=false'])
  })

  it("a context prop that switches the user together with the page: the previous user's values shown meanwhile are nobody's exposure", async () => {
    // Each user's page reads its own flag; the render that takes the new context prop is the first
    // of the new user's page. The provider switched the client in a passive effect, after its
    // children's: the new page's hook logged "alice saw the panel", which she never did. Once the
    // switch ran first, a page's effect run after it (bob cached: his values at once) logged what
    // the page had shown, alice's value, as bob's.
    const server = await startServer({}, {
      alice: { home: 'alice-home', panel: 'alice-panel', extra: 'alice-extra' },
      bob: { home: 'bob-home', panel: 'bob-panel', extra: 'bob-extra' },
    })
    const options = clientOptions(server, { events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })
    let client: FlagClient | undefined
    function Page({ flag }: { flag: string }) {
      client = useFlagClient()
      return <p>{useValue(flag, 'DEFAULT')}</p>
    }
    const app = (user: string, flag: string) => (
      <FlagProvider {...options} context={{ targetingKey: user }}>
        <Page key={flag} flag={flag} />
      </FlagProvider>
    )
    const { rerender } = render(app('alice', 'home'))
    // Bob never seen, then (after alice again) bob cached in this page.
    for (const [user, flag] of [['alice', 'home'], ['bob', 'panel'], ['alice', 'home'], ['bob', 'extra']]) {
      rerender(app(user, flag))
      await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe(`${user}-${flag}`))
      await waitFor(() => expect(client!.getStatus().state).toBe('ready'))
      await act(() => new Promise((resolve) => setTimeout(resolve, 20)))
      await act(() => client!.flush())
    }
    expect(exposures(server.events)).toEqual(['alice home="alice-home"', 'bob extra="bob-extra"', 'bob panel="bob-panel"'])
  })

  it.each([
    ['a flag added', {}],
    ['a flag of another type turned boolean', { beta: 'yes' }],
  ])("%s with the value the hook's default already showed is exposed once it is the server's (a server that names no variant)", async (_, before) => {
    const server = await startServer({ tier: 'gold', ...before })
    server.variants = false
    const client = track(createClient(clientOptions(server, { events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })))
    function Beta() {
      return <p>{`beta=${useGate('beta')}`}</p>
    }
    render(
      <FlagProvider client={client}>
        <Beta />
      </FlagProvider>,
    )
    await waitFor(() => expect(client.getStatus().state).toBe('ready'))
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)))
    // The caller's default on screen (missing, or TYPE_MISMATCH): not an exposure.
    expect(screen.getByText('beta=false')).toBeTruthy()
    // The flag is created (or made a boolean), off: the same value on screen, now the server's.
    server.flags = { tier: 'gold', beta: false }
    await act(async () => void (await client.refresh()))
    await waitFor(() => expect(client.getDetails('beta', true, { exposure: false }).source).toBe('network'))
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)))
    expect(screen.getByText('beta=false')).toBeTruthy()
    await act(() => client.flush())
    // Before: none — the hook kept its observation of the default, which the client had refused, as
    // the value and variant (none) were the same.
    expect(exposures(server.events)).toEqual(['alice beta=false'])
  })
})

it("a reader mounted during a logout exposes its flag once the same user signs in again (the values held for him unchanged)", async () => {
  const server = await startServer({ checkout: 'one-click', banner: 'spring' })
  const client = track(createClient(clientOptions(server, { storage: 'memory', events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })))
  function Banner() {
    return <p>banner {useValue('banner', 'none')}</p>
  }
  function Checkout() {
    return <p>checkout {useValue('checkout', 'none')}</p>
  }
  const app = (loggedOut: boolean) => (
    <FlagProvider client={client}>
      <Checkout />
      {loggedOut && <Banner />}
    </FlagProvider>
  )
  const { rerender } = render(app(false))
  await waitFor(() => expect(screen.getByText('checkout one-click')).toBeTruthy())
  // alice logs out (an OpenFeature logout on a shared client, or setContext without a targetingKey):
  // the logged-out page reads the banner, which is nobody's exposure while no user is on the page.
  act(() => client.pause())
  rerender(app(true))
  expect(screen.getByText('banner spring')).toBeTruthy()
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  // alice signs in again: the same values, and the banner on screen is now hers.
  await act(async () => void (await client.setContext({ targetingKey: 'alice' })))
  expect(server.requests).toEqual(['alice', 'alice'])
  await act(async () => new Promise((r) => setTimeout(r, 20)))
  await act(async () => client.flush())
  expect(screen.getByText('banner spring')).toBeTruthy()
  expect(exposures(server.events)).toEqual(['alice banner="spring"', 'alice checkout="one-click"'])
})
