// Server rendering, then hydration on a device whose clock runs minutes behind the server's (a phone
// on manual time). The bootstrap's `fetchedAt` is ahead of that clock: the hydrating render must show
// what the server rendered, `updatedAt` included (before: the browser read that time as garbage, 0,
// and an app showing when a flag last changed hydrated with other markup).
import { renderToString } from 'react-dom/server'
import { afterEach, expect, it, vi } from 'vitest'
import { FlagProvider, useFlagDetails, type Bootstrap, type ClientOptions } from '@holdfast/react'
import { render } from './rtl'
import { clientOptions, startServer } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

function Page() {
  const details = useFlagDetails('banner', false)
  return (
    <p>
      {String(details.value)} since {details.updatedAt ?? 'never'}
    </p>
  )
}

const App = (props: ClientOptions) => (
  <FlagProvider {...props}>
    <Page />
  </FlagProvider>
)

it('hydrates to identical markup, updatedAt included, when the browser clock is 5 minutes behind the server', async () => {
  const server = await startServer()
  server.mode = 'hang'
  const renderedAt = Date.now()
  const bootstrap: Bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'banner', value: true }], fetchedAt: renderedAt }
  const html = renderToString(<App {...clientOptions(server, { bootstrap })} />)
  expect(html).toContain(`since <!-- -->${renderedAt}`)

  const behind = { now: () => Date.now() - 5 * 60_000, setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: (h: unknown) => clearTimeout(h as never) }
  const consoleError = vi.spyOn(console, 'error')
  const container = document.createElement('div')
  container.innerHTML = html
  document.body.appendChild(container)
  render(<App {...clientOptions(server, { bootstrap, clock: behind })} />, { container, hydrate: true })
  expect(container.innerHTML).toBe(html)
  expect(consoleError).not.toHaveBeenCalled()
})
