// Server rendering from a bootstrap, then hydration in the browser: the same markup, no hydration
// warning, the bootstrap's values before any network, and nothing browser-only touched on the server.
import { renderToString } from 'react-dom/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FlagProvider, useConfig, useFlagDetails, useFlagStatus, useGate, useValue, type Bootstrap, type ClientOptions } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, variantOf } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

function App(props: ClientOptions) {
  return (
    <FlagProvider {...props}>
      <Page />
    </FlagProvider>
  )
}

function Page() {
  const banner = useGate('banner')
  const theme = useConfig<{ color?: string }>('theme', { color: 'grey' })
  const limit = useValue('limit', 10)
  const status = useFlagStatus()
  // In no bootstrap: the caller's default, stale while the status is stale or error.
  const promo = useFlagDetails('promo', 'none')
  return (
    <main>
      <h1>{banner ? 'Welcome back' : 'Hello'}</h1>
      <p style={{ color: theme.color }}>limit {limit}</p>
      <aside>{`promo ${promo.stale ? 'stale' : 'fresh'}`}</aside>
      <footer>{status.state}</footer>
    </main>
  )
}

const bootstrap: Bootstrap = {
  context: { targetingKey: 'alice' },
  flags: [
    { key: 'banner', value: true, variant: 'on', reason: 'TARGETING_MATCH' },
    { key: 'theme', value: { color: 'teal' }, variant: variantOf({ color: 'teal' }) },
    { key: 'limit', value: 25, variant: '25' },
  ],
  fetchedAt: Date.now(),
}

describe('server rendering and hydration', () => {
  it('hydrates to identical markup with the bootstrap values, before any network, without a warning', async () => {
    const server = await startServer({ banner: false, limit: 99 })
    server.mode = 'hang'
    const options = clientOptions(server, { bootstrap })

    // The server render: nothing may be listened to or opened.
    const addWindowListener = vi.spyOn(window, 'addEventListener')
    const addDocumentListener = vi.spyOn(document, 'addEventListener')
    const openDatabase = vi.spyOn(indexedDB, 'open')
    const html = renderToString(<App {...options} />)
    expect(addWindowListener).not.toHaveBeenCalled()
    expect(addDocumentListener).not.toHaveBeenCalled()
    expect(openDatabase).not.toHaveBeenCalled()
    expect(server.requests).toEqual([])
    expect(html).toContain('Welcome back')
    expect(html).toContain('limit <!-- -->25')
    expect(html).toContain('color:teal')
    expect(html).toContain('promo fresh')

    const consoleError = vi.spyOn(console, 'error')
    const consoleWarn = vi.spyOn(console, 'warn')
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.appendChild(container)
    const heading = container.querySelector('h1')
    render(<App {...options} />, { container, hydrate: true })

    expect(container.innerHTML).toBe(html)
    // Hydration adopted the server's nodes instead of re-creating them.
    expect(container.querySelector('h1')).toBe(heading)
    expect(consoleError).not.toHaveBeenCalled()
    expect(consoleWarn).not.toHaveBeenCalled()
    // The client started after mount; its request hangs, and the bootstrap values stay.
    await waitFor(() => expect(server.requests).toEqual(['alice']))
    expect(screen.getByRole('heading').textContent).toBe('Welcome back')
    expect(screen.getByRole('contentinfo').textContent).toBe('ready')
    expect(options.logger.warnings).toEqual([])
  })

  it('a bootstrap for another user is ignored on both sides: default markup, a warning, still no mismatch', async () => {
    // Server and browser must agree even about ignoring a bootstrap.
    const server = await startServer()
    server.mode = 'hang'
    const options = clientOptions(server, { bootstrap: { ...bootstrap, context: { targetingKey: 'bob' } } })
    const html = renderToString(<App {...options} />)
    expect(html).toContain('Hello')
    expect(html).toContain('limit <!-- -->10')
    // The ignored bootstrap is Status.error on both sides with state loading (no attempt failed): a
    // flag held by neither is the caller's default, not stale, on both.
    expect(html).toContain('promo fresh')
    const consoleError = vi.spyOn(console, 'error')
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.appendChild(container)
    render(<App {...options} />, { container, hydrate: true })
    expect(container.innerHTML).toBe(html)
    expect(consoleError).not.toHaveBeenCalled()
    expect(options.logger.warnings.join('\n')).toMatch(/another targetingKey/)
  })

  it('a server render without the bootstrap and a client render with it would mismatch (what the bootstrap prevents)', async () => {
    const server = await startServer()
    server.mode = 'hang'
    const html = renderToString(<App {...clientOptions(server)} />)
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.appendChild(container)
    const onRecoverable = vi.fn()
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    await act(async () => {
      render(<App {...clientOptions(server, { bootstrap })} />, {
        container,
        hydrate: true,
        onRecoverableError: onRecoverable,
      } as Parameters<typeof render>[1])
    })
    // React noticed: either a recoverable hydration error (19) or a console error (18).
    expect(onRecoverable.mock.calls.length + consoleError.mock.calls.length).toBeGreaterThan(0)
  })
})
