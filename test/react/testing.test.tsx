// Components under test with `createTestClient` from `@holdfast/react/testing`: what the screen
// shows follows `set` / `setStatus` at once, only the components reading a changed flag
// re-render, exposures are recorded after commit, and events logged by a click are recorded.
import { useRef } from 'react'
import { renderToString } from 'react-dom/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FlagProvider, useConfig, useEventStats, useFlagClient, useFlagDetails, useFlagStatus, useGate } from '@holdfast/react'
import { createTestClient } from '@holdfast/react/testing'
import { createTestClient as fromCore } from '@holdfast/core/testing'
import { act, cleanup, fireEvent, render, screen } from './rtl'

afterEach(() => cleanup())

function Checkout() {
  const client = useFlagClient()
  const killed = useGate('checkout-kill-switch')
  const banner = useConfig('banner-config', { text: 'Welcome' })
  const { state } = useFlagStatus()
  const renders = useRef(0)
  renders.current++
  return (
    <section>
      <p data-testid="banner">{banner.text}</p>
      {state === 'stale' && <small>showing saved settings</small>}
      <button disabled={killed} onClick={() => client.logEvent('checkout-clicked', { value: 1 })}>
        {killed ? 'Checkout is paused' : 'Buy'}
      </button>
      <span data-testid="checkout-renders">{renders.current}</span>
    </section>
  )
}

function Beta() {
  const details = useFlagDetails('beta-dashboard', false)
  const renders = useRef(0)
  renders.current++
  return (
    <p data-testid="beta">
      {String(details.value)} {details.source} {details.stale ? 'stale' : 'fresh'} <span data-testid="beta-renders">{renders.current}</span>
    </p>
  )
}

function Queue() {
  const { queued, sent } = useEventStats()
  return <p data-testid="queue">{`${queued} queued, ${sent} sent`}</p>
}

describe('createTestClient with <FlagProvider client>', () => {
  it('is the same helper from @holdfast/react/testing and @holdfast/core/testing', () => {
    expect(createTestClient).toBe(fromCore)
  })

  it('renders the given values; set() and setStatus() show at once; only readers of a changed flag re-render', () => {
    const client = createTestClient({ flags: { 'checkout-kill-switch': false, 'banner-config': { text: 'Spring sale' }, 'beta-dashboard': true } })
    render(
      <FlagProvider client={client}>
        <Checkout />
        <Beta />
      </FlagProvider>,
    )
    expect(screen.getByTestId('banner').textContent).toBe('Spring sale')
    expect(screen.getByRole('button', { name: 'Buy' }).hasAttribute('disabled')).toBe(false)
    expect(screen.getByTestId('beta').textContent).toMatch(/^true network fresh/)
    const betaRenders = Number(screen.getByTestId('beta-renders').textContent)

    act(() => client.set('checkout-kill-switch', true))
    expect(screen.getByRole('button', { name: 'Checkout is paused' }).hasAttribute('disabled')).toBe(true)
    expect(Number(screen.getByTestId('beta-renders').textContent)).toBe(betaRenders) // it reads another flag

    act(() => client.setStatus('stale'))
    expect(screen.getByText('showing saved settings')).toBeTruthy()
    expect(screen.getByTestId('beta').textContent).toMatch(/^true network stale/)

    act(() => client.remove('banner-config'))
    expect(screen.getByTestId('banner').textContent).toBe('Welcome')
  })

  it('records exposures after commit and events from clicks; the provider never closes or refetches it', async () => {
    const client = createTestClient({ flags: { 'checkout-kill-switch': false, 'beta-dashboard': true }, context: { targetingKey: 'ada' } })
    const view = render(
      <FlagProvider client={client}>
        <Checkout />
        <Beta />
        <Queue />
      </FlagProvider>,
    )
    expect(client.exposures).toEqual(
      expect.arrayContaining([
        { key: 'checkout-kill-switch', value: false, targetingKey: 'ada' },
        { key: 'beta-dashboard', value: true, targetingKey: 'ada' },
      ]),
    )
    expect(client.exposures.some((e) => e.key === 'banner-config')).toBe(false) // a default is no exposure

    fireEvent.click(screen.getByRole('button', { name: 'Buy' }))
    expect(client.loggedEvents).toEqual([{ name: 'checkout-clicked', value: 1, targetingKey: 'ada' }])
    expect(screen.getByTestId('queue').textContent).toBe('1 queued, 0 sent')
    await act(() => client.flush())
    expect(screen.getByTestId('queue').textContent).toBe('0 queued, 1 sent')

    view.unmount()
    act(() => client.set('beta-dashboard', false)) // still usable: a client passed in is never closed by the provider
    expect(client.getGate('beta-dashboard', true)).toBe(false)
  })

  it('a context prop on the provider switches the test client\'s user', async () => {
    const client = createTestClient({ flags: { 'beta-dashboard': true } })
    render(
      <FlagProvider client={client} context={{ targetingKey: 'bob', plan: 'free' }}>
        <Beta />
      </FlagProvider>,
    )
    await act(async () => {})
    expect(client.getContext()).toEqual({ targetingKey: 'bob', plan: 'free' })
  })
})

describe('createTestClient and server rendering', () => {
  it('a page reading a flag the test client does not hold hydrates from its server markup without a warning', () => {
    const client = createTestClient({ flags: { 'checkout-kill-switch': false } })
    const page = (
      <FlagProvider client={client}>
        <Beta />
      </FlagProvider>
    )
    const html = renderToString(page)
    expect(html).toMatch(/false(<!-- -->)? (<!-- -->)?default(<!-- -->)? (<!-- -->)?fresh/)
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.appendChild(container)
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      act(() => void render(page, { container, hydrate: true }))
      expect(consoleError).not.toHaveBeenCalled()
      expect(container.textContent).toMatch(/^false default fresh/)
      // The same details object while nothing changed, as the real client's.
      expect(client.getDetails('beta-dashboard', false)).toBe(client.getDetails('beta-dashboard', false))
    } finally {
      consoleError.mockRestore()
      container.remove()
    }
  })
})
