// How many client objects StrictMode's double render builds, counted at `createClient`. React 19
// keeps the first render's hooks for the second, so one; React 18 re-runs the first render from
// scratch, so its lazy ref builds a second object and throws the first away. Either way exactly
// one client is started, fetches, listens and is closed; a thrown-away one did nothing at all.
import { StrictMode, version } from 'react'
import { describe, expect, it, vi } from 'vitest'
import * as core from '@holdfast/core'
import { FlagProvider, useValue } from '@holdfast/react'
import { render, screen, waitFor } from './rtl'
import { clientOptions, startServer } from './testServer'

const created = vi.hoisted(() => [] as Array<{ start: { calls: number }; close: { calls: number } }>)

vi.mock('@holdfast/core', async (importOriginal) => {
  const original = await importOriginal<typeof core>()
  return {
    ...original,
    createClient(options: core.ClientOptions) {
      const client = original.createClient(options)
      const record = { start: { calls: 0 }, close: { calls: 0 } }
      created.push(record)
      const { start, close } = client
      client.start = () => (record.start.calls++, start())
      client.close = () => (record.close.calls++, close())
      return client
    },
  }
})

function Greeting() {
  return <p>{useValue('greeting', 'DEFAULT')}</p>
}

describe('StrictMode', () => {
  it('builds one client on React 19 (at most one unstarted extra on React 18), starts and closes exactly one', async () => {
    const server = await startServer({ greeting: 'hello' })
    const { unmount } = render(
      <StrictMode>
        <FlagProvider {...clientOptions(server)}>
          <Greeting />
        </FlagProvider>
      </StrictMode>,
    )
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    expect(created.length).toBe(version.startsWith('18.') ? 2 : 1)
    const started = created.filter((c) => c.start.calls > 0)
    expect(started.length).toBe(1)
    expect(server.requests).toEqual(['alice'])
    unmount()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(created.map((c) => c.close.calls)).toEqual(created.map((c) => (c === started[0] ? 1 : 0)))
  })
})
