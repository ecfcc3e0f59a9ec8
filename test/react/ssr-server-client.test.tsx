// @vitest-environment node
// Server rendering with a client the server itself started (no `window`: Node, as in a server
// component or a handler that awaits the flags before rendering): the markup shows what that client
// holds at render time, its network answer, not what it held when created. Hydration in a browser
// reads what the client held at creation (ssr-late-hydration.test.tsx); a server has nothing to
// hydrate, and its render is what a browser's bootstrap then carries.
import { renderToString } from 'react-dom/server'
import { expect, it } from 'vitest'
import { createClient } from '@holdfast/core'
import { FlagProvider, useFlagStatus, useGate, useValue } from '@holdfast/react'
import { clientOptions, startServer, track } from './testServer'

function Page() {
  const banner = useGate('banner')
  const limit = useValue('limit', 10)
  const status = useFlagStatus()
  return (
    <main>
      {banner ? 'Welcome back' : 'Hello'} limit {limit} {status.state}
    </main>
  )
}

it('a client started on the server renders its network values, not its values at creation', async () => {
  expect(typeof window).toBe('undefined')
  const server = await startServer({ banner: true, limit: 50 })
  const client = track(createClient({ ...clientOptions(server), storage: 'memory' }))
  expect((await client.start()).state).toBe('ready')
  const html = renderToString(
    <FlagProvider client={client}>
      <Page />
    </FlagProvider>,
  )
  expect(html.replace(/<!-- -->/g, '')).toBe('<main>Welcome back limit 50 ready</main>')
})
