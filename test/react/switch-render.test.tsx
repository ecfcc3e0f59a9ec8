// The render that takes a new user's `context` prop runs before the provider's layout effect
// switches the client. That render is committed: its children's layout effects run, and so do
// their passive effects (React flushes them before the synchronous re-render the switch causes).
// None of them may see the previous user's values as if they were the new user's:
//
//   Alice (admin) logs out, Bob logs in ─ render with context={bob}: the client still holds alice
//   ├─ child layout effect      ← must not see admin=true, `ready`
//   ├─ provider layout effect   → client.setContext(bob)
//   ├─ child passive effect     ← nor here: `useEffect(() => { if (admin) loadAdminData() })`
//   └─ sync re-render           → bob's cached values, or alice's marked `loading` and stale (§5)
import { StrictMode, startTransition, useEffect, useLayoutEffect, useState, type ReactNode } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  FlagProvider,
  FlagsReady,
  createClient,
  useFlagDetails,
  useFlagStatus,
  useFlagsReady,
  useGate,
  type EvaluationContext,
  type FlagClient,
  type HoldfastEvent,
} from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track, type TestServer } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

const users = { alice: { admin: true, greeting: 'hi alice' }, bob: { admin: false, greeting: 'hi bob' } }

interface Seen {
  effect: 'layout' | 'passive'
  admin: boolean
  greeting: string
  stale: boolean
  state: string
  ready: boolean
}

/** Every effect of every commit of every Probe, with what that commit showed. */
let seen: Seen[] = []

function Probe() {
  const admin = useGate('admin')
  const { value: greeting, stale } = useFlagDetails('greeting', 'DEFAULT')
  const { state } = useFlagStatus()
  const ready = useFlagsReady()
  const shown = { admin, greeting, stale, state, ready }
  // No dependency list: every commit records what it showed.
  useLayoutEffect(() => void seen.push({ effect: 'layout', ...shown }))
  useEffect(() => void seen.push({ effect: 'passive', ...shown }))
  return <p>{`${greeting} ${state}`}</p>
}

function exposures(events: HoldfastEvent[]) {
  return events.filter((e) => e.type === 'exposure').map((e) => `${e.targetingKey} ${e.flagKey}=${JSON.stringify(e.value)}`)
}

/** Alice's values in an effect after the switch: only as the contract's stand-in (loading, stale). */
function alicesAsOwn(records: Seen[]) {
  return records.filter((r) => (r.greeting === 'hi alice' || r.admin) && !(r.state === 'loading' && r.stale))
}

async function setup(server: TestServer) {
  return track(
    createClient(clientOptions(server, { refreshOnFocus: false, events: { url: server.eventsUrl, flushIntervalMs: 60_000 } })),
  )
}

type Wrap = (client: FlagClient, context: EvaluationContext) => ReactNode

const plain: Wrap = (client, context) => (
  <FlagProvider client={client} context={context}>
    <Probe />
  </FlagProvider>
)
const strict: Wrap = (client, context) => <StrictMode>{plain(client, context)}</StrictMode>
// One client, two providers that both take the user from the app.
const shared: Wrap = (client, context) => (
  <>
    {plain(client, context)}
    <FlagProvider client={client} context={context}>
      <Probe />
    </FlagProvider>
  </>
)
// A provider the app wraps around its flag-dependent part as the README shows.
const held: Wrap = (client, context) => (
  <FlagProvider client={client} context={context}>
    <FlagsReady>
      <Probe />
    </FlagsReady>
  </FlagProvider>
)

// A part of the page that provides the same client again (a library's subtree, say), with no prop.
const nested: Wrap = (client, context) => (
  <FlagProvider client={client} context={context}>
    <FlagProvider client={client}>
      <Probe />
    </FlagProvider>
  </FlagProvider>
)

/** Bob's answer, held back until now, arrives: his values show, no effect ever saw alice's as his, and only bob's exposures are logged. */
async function bobArrives(server: TestServer, client: FlagClient): Promise<void> {
  await waitFor(() => expect(server.requests).toEqual(['alice', 'bob']))
  server.release()
  await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toBe('hi bob ready'))
  expect(alicesAsOwn(seen)).toEqual([])
  await act(() => client.flush())
  expect(exposures(server.events).sort()).toEqual(['bob admin=false', 'bob greeting="hi bob"'])
}

describe.each([
  ['a provider', plain],
  ['a nested provider of the same client', nested],
  ['StrictMode', strict],
  ['a client shared by two providers', shared],
  ['<FlagsReady>', held],
])('the render that takes a new user (%s)', (_, wrap) => {
  it('bob cached on this page: no effect sees alice’s values, then bob’s', async () => {
    const server = await startServer({}, users)
    const client = await setup(server)
    const { rerender } = render(wrap(client, { targetingKey: 'alice' }))
    await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toBe('hi alice ready'))
    // Bob has been here before on this page: his values are cached in memory.
    rerender(wrap(client, { targetingKey: 'bob' }))
    await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toBe('hi bob ready'))
    rerender(wrap(client, { targetingKey: 'alice' }))
    await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toBe('hi alice ready'))
    await act(() => client.flush())
    server.events.length = 0

    seen = []
    server.mode = 'hang'
    rerender(wrap(client, { targetingKey: 'bob' }))
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.filter((r) => r.greeting === 'hi alice' || r.admin)).toEqual([])
    // Whatever stood in before the switch landed was not `ready`.
    expect(seen.filter((r) => r.greeting !== 'hi bob' && r.state === 'ready')).toEqual([])
    for (const p of screen.getAllByRole('paragraph')) expect(p.textContent).toBe('hi bob ready')
    server.release()
    await act(() => client.flush())
    expect(exposures(server.events).filter((e) => e.startsWith('bob ') && e.includes('alice'))).toEqual([])
    expect(exposures(server.events).filter((e) => e.startsWith('alice '))).toEqual([])
  })

  it('bob not cached: alice’s values reach no effect unless marked loading and stale; none is exposed for bob', async () => {
    const server = await startServer({}, users)
    const client = await setup(server)
    const { rerender } = render(wrap(client, { targetingKey: 'alice' }))
    await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toBe('hi alice ready'))
    await act(() => client.flush())
    server.events.length = 0

    seen = []
    server.mode = 'hang'
    rerender(wrap(client, { targetingKey: 'bob' }))
    expect(seen.length).toBeGreaterThan(0)
    expect(alicesAsOwn(seen)).toEqual([])
    await bobArrives(server, client)
  })

  it('mounting on a client that holds another user (a shared client): the first commit is not alice’s, nor ready', async () => {
    const server = await startServer({}, users)
    const client = await setup(server)
    await act(() => client.start())
    expect(client.getStatus().state).toBe('ready')
    await act(() => client.flush())
    server.events.length = 0

    seen = []
    server.mode = 'hang'
    render(wrap(client, { targetingKey: 'bob' }))
    expect(alicesAsOwn(seen)).toEqual([])
    // `<FlagsReady>` holds it: what is settled is alice's, not bob's.
    expect(seen.filter((r) => r.ready)).toEqual([])
    await bobArrives(server, client)
  })

  it('a context without targetingKey (anonymous): alice’s values reach no effect and none is exposed', async () => {
    const server = await startServer({}, users)
    const client = await setup(server)
    const { rerender } = render(wrap(client, { targetingKey: 'alice' }))
    await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toBe('hi alice ready'))
    await act(() => client.flush())
    server.events.length = 0

    seen = []
    rerender(wrap(client, {} as EvaluationContext))
    expect(seen.length).toBeGreaterThan(0)
    // A later change of alice's values (a poll, a live update) does not bring them back either.
    server.users = { ...users, alice: { admin: true, greeting: 'hi alice again' } }
    await act(() => client.refresh())
    expect(seen.filter((r) => r.greeting.startsWith('hi alice') || r.admin)).toEqual([])
    for (const p of screen.getAllByRole('paragraph')) expect(p.textContent).not.toMatch(/alice/)
    await act(() => client.flush())
    expect(exposures(server.events)).toEqual([])
  })
})

it('what stands in for a context without targetingKey is one object: an effect that copies it into state settles', async () => {
  const server = await startServer({}, users)
  const client = await setup(server)
  let renders = 0
  function Copy() {
    // On main this looped for ever, synchronously inside act: the throw ends it as a failure.
    if (++renders > 50) throw new Error('render loop')
    const status = useFlagStatus()
    const details = useFlagDetails('greeting', 'DEFAULT')
    const [copy, setCopy] = useState<unknown>(null)
    // An app keeping its own copy: fine while each hook returns one object per change.
    useEffect(() => setCopy({ status, details }), [status, details])
    return <p>{`${details.value} ${status.state} ${copy ? 'copied' : ''}`}</p>
  }
  const page = (context: EvaluationContext) => (
    <FlagProvider client={client} context={context}>
      <Copy />
    </FlagProvider>
  )
  const { rerender } = render(page({ targetingKey: 'alice' }))
  await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi alice ready copied'))
  vi.spyOn(console, 'error').mockImplementation(() => {}) // React reports the thrown loop on main
  renders = 0
  await act(async () => {
    rerender(page({} as EvaluationContext))
    await new Promise((resolve) => setTimeout(resolve, 50))
  })
  expect(screen.getByRole('paragraph').textContent).toBe('DEFAULT loading copied')
  expect(renders).toBeLessThan(10)
})

it('a switch inside a transition (a concurrent render, interruptible): no effect sees alice’s values as bob’s', async () => {
  const server = await startServer({}, users)
  const client = await setup(server)
  let setUser: (user: string) => void = () => {}
  function App() {
    const [user, set] = useState('alice')
    setUser = set
    return (
      <StrictMode>
        <FlagProvider client={client} context={{ targetingKey: user }}>
          <Probe />
          <Probe />
        </FlagProvider>
      </StrictMode>
    )
  }
  render(<App />)
  await waitFor(() => expect(screen.getAllByRole('paragraph')[0].textContent).toBe('hi alice ready'))
  seen = []
  server.mode = 'hang'
  await act(async () => startTransition(() => setUser('bob')))
  expect(seen.length).toBeGreaterThan(0)
  expect(alicesAsOwn(seen)).toEqual([])
  server.release()
  await waitFor(() => expect(screen.getAllByRole('paragraph')[1].textContent).toBe('hi bob ready'))
  expect(alicesAsOwn(seen)).toEqual([])
})

it('a nested provider of another client is not switching: it goes on showing its own user’s values', async () => {
  const server = await startServer({}, users)
  const client = await setup(server)
  const other = track(createClient(clientOptions(server, { context: { targetingKey: 'carol' }, refreshOnFocus: false })))
  server.users = { ...users, carol: { admin: true, greeting: 'hi carol' } }
  const page = (context: EvaluationContext) => (
    <FlagProvider client={client} context={context}>
      <FlagProvider client={other}>
        <Probe />
      </FlagProvider>
    </FlagProvider>
  )
  const { rerender } = render(page({ targetingKey: 'alice' }))
  await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi carol ready'))
  seen = []
  server.mode = 'hang'
  rerender(page({ targetingKey: 'bob' }))
  expect(seen.length).toBeGreaterThan(0)
  expect(seen.every((r) => r.greeting === 'hi carol' && r.admin && r.state === 'ready')).toBe(true)
})

it('a context prop whose targetingKey cannot be read (a throwing getter, a revoked Proxy) never throws into render', async () => {
  const server = await startServer({}, users)
  const client = await setup(server)
  const page = (context: EvaluationContext) => (
    <FlagProvider client={client} context={context}>
      <Probe />
    </FlagProvider>
  )
  const { rerender } = render(page({ targetingKey: 'alice' }))
  await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi alice ready'))
  const revoked = Proxy.revocable({}, {})
  revoked.revoke()
  const hostile = [
    Object.defineProperty({}, 'targetingKey', { enumerable: true, get: () => { throw new Error('no key') } }),
    revoked.proxy,
  ] as EvaluationContext[]
  for (const context of hostile) {
    seen = []
    expect(() => rerender(page(context))).not.toThrow()
    expect(screen.getByRole('paragraph').textContent).toBe('DEFAULT loading')
    expect(seen.filter((r) => r.greeting === 'hi alice' || r.admin)).toEqual([])
  }
  rerender(page({ targetingKey: 'alice' }))
  expect(screen.getByRole('paragraph').textContent).toBe('hi alice ready')
})
