// Server rendering, then a part of the page that hydrates after the provider has started: a
// <Suspense> boundary whose code is still loading (React.lazy, a Next.js dynamic import) is
// hydrated by React on its own, later. By then the browser may hold newer values than the server
// rendered (this user's cache, read at start; the network's answer). The boundary's hydrating
// render must still show what the server rendered (useSyncExternalStore's server snapshot), and
// only then the newer values. Before, it read the newer ones at once: React 19 reported
// "Hydration failed because the server rendered text didn't match the client" and threw the
// server's DOM away; React 18 switched the boundary to client rendering with an error.
import { lazy, Suspense, type ComponentType } from 'react'
import { renderToString } from 'react-dom/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createClient, FlagProvider, useEventStats, useFlagClient, useFlagDetails, useFlagStatus, useFlagsReady, useGate, type Bootstrap, type ClientOptions, type FlagClient } from '@holdfast/react'
import { act, render, waitFor } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

function Page() {
  const banner = useGate('banner')
  const { state, source } = useFlagStatus()
  const ready = useFlagsReady()
  const { queued } = useEventStats()
  return <p>{`${banner ? 'Welcome back' : 'Hello'} (${state} from ${source}, ${ready ? 'shown' : 'held'}, ${queued} queued)`}</p>
}

let client: FlagClient | undefined
/** Renders nothing: hands the test the provider's client. */
function Probe() {
  client = useFlagClient()
  return null
}

function App({ page: Body, ...options }: ClientOptions & { page: ComponentType }) {
  return (
    <FlagProvider {...options}>
      <Probe />
      <Suspense fallback={<p>loading</p>}>
        <Body />
      </Suspense>
    </FlagProvider>
  )
}

describe('a <Suspense> boundary that hydrates after the provider started', () => {
  for (const withBootstrap of [false, true])
    it(`${withBootstrap ? "with a bootstrap, after the network's newer answer" : 'without a bootstrap (the server was down), after the cache was read'}: hydrates to the server markup, then shows the newer values`, async () => {
      const server = await startServer({ banner: true })
      const options = clientOptions(server, { events: { url: server.eventsUrl, flushIntervalMs: 60_000 } })
      let page: ClientOptions = options
      if (withBootstrap) {
        // Rendered while banner was off; it has been turned on since.
        const bootstrap: Bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'banner', value: false, variant: 'off' }], fetchedAt: Date.now() - 1000 }
        page = { ...options, bootstrap }
      } else {
        // A visit yesterday left alice's values in this browser's cache; today the flag server is
        // down when the page is rendered, so it renders without a bootstrap, and stays down.
        const earlier = track(createClient({ ...options, events: false }))
        await earlier.start()
        await earlier.close()
        server.mode = 'hang'
      }
      const html = renderToString(<App {...page} page={Page} />)
      expect(html).toContain(withBootstrap ? 'Hello (ready from bootstrap, shown, 0 queued)' : 'Hello (loading from none, held, 0 queued)')

      const container = document.createElement('div')
      container.innerHTML = html
      document.body.appendChild(container)
      const serverParagraph = container.querySelector('p')
      let load!: () => void
      const LazyPage = lazy(() => new Promise<{ default: ComponentType }>((resolve) => (load = () => resolve({ default: Page }))))
      const onRecoverableError = vi.fn()
      const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
      client = undefined
      await act(async () => {
        render(<App {...page} page={LazyPage} />, { container, hydrate: true, onRecoverableError } as Parameters<typeof render>[1])
      })
      // While the page's code loads, the provider's client takes alice's newer values.
      await waitFor(() => expect(client?.getDetails('banner', false, { exposure: false }).value).toBe(true))
      // And an event logged meanwhile waits in the queue.
      client!.logEvent('clicked')
      await waitFor(() => expect(client!.getEventStats().queued).toBe(1))
      await act(async () => load())

      // The event, and the exposure of the value shown now (none for the server's, which only stood in).
      await waitFor(() => expect(container.textContent).toMatch(/^Welcome back \((ready|stale) from (cache|network), shown, 2 queued\)$/))
      await client!.flush()
      expect(server.events.filter((e) => e.type == 'exposure').map((e) => [e.flagKey, e.value])).toEqual([['banner', true]])
      expect(onRecoverableError).not.toHaveBeenCalled()
      expect(consoleError).not.toHaveBeenCalled()
      // Hydration adopted the server's node rather than rendering the boundary again.
      expect(container.querySelector('p')).toBe(serverParagraph)
    })
})

function Promo() {
  // `promo` is in no answer: the caller's default, stale while the latest attempt failed.
  const promo = useFlagDetails('promo', 'none')
  return <p>{`promo ${promo.value} (${promo.stale ? 'stale' : 'fresh'})`}</p>
}

it('a flag held by no answer hydrates late to what the server showed (fresh), then shows it stale once an attempt failed, without an uncached snapshot', async () => {
  const server = await startServer({ banner: true })
  server.mode = 'error'
  const bootstrap: Bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'banner', value: true }], fetchedAt: Date.now() - 1000 }
  const page = { ...clientOptions(server), bootstrap }
  const html = renderToString(<App {...page} page={Promo} />)
  expect(html).toContain('promo none (fresh)')

  const container = document.createElement('div')
  container.innerHTML = html
  document.body.appendChild(container)
  let load!: () => void
  const LazyPage = lazy(() => new Promise<{ default: ComponentType }>((resolve) => (load = () => resolve({ default: Promo }))))
  const onRecoverableError = vi.fn()
  const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
  client = undefined
  await act(async () => {
    render(<App {...page} page={LazyPage} />, { container, hydrate: true, onRecoverableError } as Parameters<typeof render>[1])
  })
  // The first attempt fails while the page's code loads: the status is stale from then on.
  await waitFor(() => expect(client?.getStatus().state).toBe('stale'))
  await act(async () => load())

  await waitFor(() => expect(container.textContent).toBe('promo none (stale)'))
  expect(onRecoverableError).not.toHaveBeenCalled()
  expect(consoleError).not.toHaveBeenCalled()
  // What the client held at creation and what it holds now are each one object, read in turns.
  const [created, now] = [client!.getDetails('promo', 'none', { asCreated: true }), client!.getDetails('promo', 'none')]
  expect([created.stale, now.stale]).toEqual([false, true])
  expect(client!.getDetails('promo', 'none', { asCreated: true })).toBe(created)
  expect(client!.getDetails('promo', 'none')).toBe(now)
})
