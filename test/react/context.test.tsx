// The `context` prop switches the user by value: an equal new object is no change; another
// targetingKey calls setContext once, and the screen goes from the old user's values straight to
// the new user's, never through the defaults.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FlagProvider, createClient, useFlagClient, useFlagStatus, useValue, type EvaluationContext, type FlagClient } from '@holdfast/react'
import { render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

const users = { alice: { greeting: 'hi alice' }, bob: { greeting: 'hi bob' } }

describe('context prop', () => {
  it('switches the user by value, without a flash of defaults', async () => {
    const server = await startServer({}, users)
    const options = clientOptions(server)
    let client: FlagClient | undefined
    function Greeting() {
      client = useFlagClient()
      const greeting = useValue('greeting', 'DEFAULT')
      const { state } = useFlagStatus()
      return <p>{`${greeting} (${state})`}</p>
    }
    // What could be painted: the DOM when the task that changed it ends (a MutationObserver runs
    // then). The render that takes the new prop is committed and replaced in one task, before any
    // paint: it shows the defaults (switch-render.test.tsx), which must never reach the screen.
    const shown: string[] = []
    const observer = new MutationObserver(() => shown.push(document.querySelector('p')!.textContent!.replace(/ \(.*/, '')))
    observer.observe(document.body, { subtree: true, childList: true, characterData: true })
    const app = (context: EvaluationContext) => (
      <FlagProvider {...options} context={context}>
        <Greeting />
      </FlagProvider>
    )
    const { rerender } = render(app({ targetingKey: 'alice', plan: 'pro' }))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi alice (ready)'))
    const setContext = vi.spyOn(client!, 'setContext')

    // A new object with the same content (keys in another order, too): nothing happens.
    rerender(app({ plan: 'pro', targetingKey: 'alice' }))
    rerender(app({ targetingKey: 'alice', plan: 'pro' }))
    expect(setContext).not.toHaveBeenCalled()
    expect(server.requests).toEqual(['alice'])

    // Another user: one setContext; while bob's values are on their way alice's stay on screen.
    shown.length = 0
    server.mode = 'hang'
    rerender(app({ targetingKey: 'bob', plan: 'pro' }))
    expect(setContext).toHaveBeenCalledTimes(1)
    expect(setContext).toHaveBeenCalledWith({ targetingKey: 'bob', plan: 'pro' })
    await waitFor(() => expect(server.requests).toEqual(['alice', 'bob']))
    expect(screen.getByRole('paragraph').textContent).toBe('hi alice (loading)')
    server.release()
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi bob (ready)'))
    expect(shown).not.toContain('DEFAULT')
    expect(new Set(shown)).toEqual(new Set(['hi alice', 'hi bob']))
    expect(setContext).toHaveBeenCalledTimes(1)
    observer.disconnect()
  })

  it('with a passed-in client, a context prop that differs from the client context switches it before the first fetch', async () => {
    const server = await startServer({}, users)
    const client = track(createClient(clientOptions(server)))
    render(
      <FlagProvider client={client} context={{ targetingKey: 'bob' }}>
        <Greeting />
      </FlagProvider>,
    )
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi bob'))
    expect(server.requests).toEqual(['bob'])
    expect(client.getContext()).toEqual({ targetingKey: 'bob' })
  })

  it('a changed Date attribute switches the context; the same date in a new Date object does not', async () => {
    const server = await startServer({}, users)
    const options = clientOptions(server)
    let client: FlagClient | undefined
    function Probe() {
      client = useFlagClient()
      return null
    }
    const app = (since: Date) => (
      <FlagProvider {...options} context={{ targetingKey: 'alice', since }}>
        <Probe />
      </FlagProvider>
    )
    const { rerender } = render(app(new Date(Date.UTC(2020, 0, 1))))
    await waitFor(() => expect(server.requests).toEqual(['alice']))
    const setContext = vi.spyOn(client!, 'setContext')
    rerender(app(new Date(Date.UTC(2020, 0, 1))))
    expect(setContext).not.toHaveBeenCalled()
    rerender(app(new Date(Date.UTC(2025, 0, 1))))
    await waitFor(() => expect(server.requests).toEqual(['alice', 'alice']))
    expect(setContext).toHaveBeenCalledTimes(1)
  })

  it('a context that cannot be serialised (a cycle, a BigInt) never throws into render: INVALID_CONTEXT, then a good one recovers', async () => {
    const server = await startServer({}, users)
    const options = clientOptions(server)
    let client: FlagClient | undefined
    function Status() {
      client = useFlagClient()
      const status = useFlagStatus()
      return <span>{`${status.state} ${status.error?.code ?? ''}`}</span>
    }
    const cyclic = () => {
      const context: Record<string, unknown> = { targetingKey: 'alice' }
      context.self = context
      return context as EvaluationContext
    }
    const app = (context: EvaluationContext) => (
      <FlagProvider {...options} context={context}>
        <Greeting />
        <Status />
      </FlagProvider>
    )
    const { rerender } = render(app(cyclic()))
    expect(screen.getByRole('paragraph').textContent).toBe('DEFAULT')
    await waitFor(() => expect(client!.getStatus().error?.code).toBe('INVALID_CONTEXT'))
    const setContext = vi.spyOn(client!, 'setContext')
    // A new cyclic object every render (same content) is no switch; a BigInt neither throws.
    rerender(app(cyclic()))
    rerender(app(cyclic()))
    expect(setContext).not.toHaveBeenCalled()
    rerender(app({ targetingKey: 'alice', visits: 10n } as never))
    expect(setContext).not.toHaveBeenCalled()
    expect(screen.getByText(/^error INVALID_CONTEXT/)).toBeTruthy()
    rerender(app({ targetingKey: 'alice' }))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi alice'))
    expect(server.requests).toEqual(['alice'])
    expect(setContext).toHaveBeenCalledTimes(1)
    expect(client!.getStatus().state).toBe('ready')

    // A client passed in, with such a context prop: no throw either.
    const given = track(createClient(clientOptions(server)))
    render(
      <FlagProvider client={given} context={{ targetingKey: 'bob', visits: 10n } as never}>
        <span>given</span>
      </FlagProvider>,
    )
    await waitFor(() => expect(given.getStatus().error?.code).toBe('INVALID_CONTEXT'))
  })
})

function Greeting() {
  return <p>{useValue('greeting', 'DEFAULT')}</p>
}
