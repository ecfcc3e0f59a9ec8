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
    const shown: string[] = []
    let client: FlagClient | undefined
    function Greeting() {
      client = useFlagClient()
      const greeting = useValue('greeting', 'DEFAULT')
      const { state } = useFlagStatus()
      shown.push(greeting)
      return <p>{`${greeting} (${state})`}</p>
    }
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
})

function Greeting() {
  return <p>{useValue('greeting', 'DEFAULT')}</p>
}
