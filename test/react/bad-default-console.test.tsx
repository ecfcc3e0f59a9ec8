// The warning for a default that is not JSON goes to `console.warn`; a console replaced by
// something that throws must not turn that warning into a throw out of render. Its own file: the
// warning is given once per page (module), so an earlier test would have used it up.
import { afterEach, expect, it, vi } from 'vitest'
import { FlagProvider, createClient, useConfig } from '@holdfast/react'
import { render, screen } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

it('a default with a BigInt under a console.warn that throws still renders its default', async () => {
  const server = await startServer({ count: 3 })
  const client = track(createClient(clientOptions(server)))
  await client.start()
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {
    throw new Error('telemetry hook broke')
  })
  vi.spyOn(console, 'error').mockImplementation(() => {})
  function Reader() {
    const big = useConfig('missing', { limit: 10n })
    return <p>{String(big.limit)}</p>
  }
  render(
    <FlagProvider client={client}>
      <Reader />
    </FlagProvider>,
  )
  expect(screen.getByRole('paragraph').textContent).toBe('10')
  expect(warn).toHaveBeenCalledTimes(1)
})
