// A default the hooks cannot serialise (a BigInt, a cycle) is the app's value, not JSON: the hook
// hands it back as given and never throws into render (contexts are guarded the same way).
import { useState } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FlagProvider, createClient, useConfig, useFlagDetails, useValue } from '@holdfast/react'
import { act, render, screen } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('a default that is not JSON', () => {
  it('useConfig with a BigInt or a cycle in its default returns that default, warns once and never crashes', async () => {
    const server = await startServer({ banner: { text: 'sale' }, count: 3 })
    const client = track(createClient(clientOptions(server)))
    await client.start()
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const cyclic = () => {
      const value: Record<string, unknown> = { limit: 1 }
      value.self = value
      return value
    }
    let renders = 0
    let bump: () => void = () => {}
    const seen: Record<string, unknown>[] = []
    function Reader() {
      renders++
      const [n, setN] = useState(0)
      bump = () => setN(n + 1)
      const big = useConfig('missing', { limit: 10n })
      const loop = useConfig('count', cyclic()) // a number held: TYPE_MISMATCH, the default
      const held = useConfig('banner', { text: 1n } as { text: unknown })
      const details = useFlagDetails('missing-too', { when: 5n })
      const value = useValue('count', 0)
      seen.push(loop)
      return <p>{`${String(big.limit)} ${String(loop.limit)} ${String(loop.self === loop)} ${String(held.text)} ${String(details.value.when)} ${details.errorCode} ${value} ${n}`}</p>
    }
    render(
      <FlagProvider client={client}>
        <Reader />
      </FlagProvider>,
    )
    expect(screen.getByRole('paragraph').textContent).toBe('10 1 true sale 5 FLAG_NOT_FOUND 3 0')
    await act(() => client.refresh())
    act(() => bump())
    expect(screen.getByRole('paragraph').textContent).toBe('10 1 true sale 5 FLAG_NOT_FOUND 3 1')
    // No render loop: the first render, and the one for the bump.
    expect(renders).toBeLessThanOrEqual(3)
    expect(warn.mock.calls.filter(([m]) => String(m).startsWith('[holdfast]')).length).toBe(1)
  })
})
