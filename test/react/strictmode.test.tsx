// How many client objects StrictMode's double render builds, counted at `createClient`. React 19
// keeps the first render's hooks for the second, so one; React 18 re-runs the first render from
// scratch, so its lazy ref builds a second object and throws the first away. Either way exactly
// one client is started, fetches, listens and is closed; a thrown-away one did nothing at all.
import { StrictMode, version } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as core from '@holdfast/core'
import { FlagProvider, useValue } from '@holdfast/react'
import { render, screen, waitFor } from './rtl'
import { clientOptions, startServer } from './testServer'

/** What one client did: calls, and what it holds now (listeners, pending timers, requests, its database). */
interface Record_ {
  start: { calls: number }
  close: { calls: number }
  listening: number
  timers: Set<unknown>
  fetches: number
  storageName: string
  /** What the last close() returned. */
  closed?: Promise<void>
}
const created = vi.hoisted(() => [] as Record_[])

vi.mock('@holdfast/core', async (importOriginal) => {
  const original = await importOriginal<typeof core>()
  return {
    ...original,
    createClient(options: core.ClientOptions) {
      // Each client gets its own environment, clock, fetch and database name, so what it holds is its own to count.
      const record: Record_ = { start: { calls: 0 }, close: { calls: 0 }, listening: 0, timers: new Set(), fetches: 0, storageName: `${options.storageName}#${created.length}` }
      const environment: core.Environment = {
        ...original.browserEnvironment,
        listen(handlers) {
          record.listening++
          const remove = original.browserEnvironment.listen(handlers)
          return () => (record.listening--, remove())
        },
      }
      const clock: core.Clock = {
        now: () => Date.now(),
        setTimeout(callback, ms) {
          const handle = setTimeout(() => (record.timers.delete(handle), callback()), ms)
          record.timers.add(handle)
          return handle
        },
        clearTimeout(handle) {
          record.timers.delete(handle)
          clearTimeout(handle as ReturnType<typeof setTimeout>)
        },
      }
      const fetch: typeof globalThis.fetch = (input, init) => (record.fetches++, globalThis.fetch(input, init))
      const client = original.createClient({ ...options, environment, clock, fetch, storageName: record.storageName })
      created.push(record)
      const { start, close } = client
      client.start = () => (record.start.calls++, start())
      client.close = () => (record.close.calls++, (record.closed = close()))
      return client
    },
  }
})

function Greeting() {
  return <p>{useValue('greeting', 'DEFAULT')}</p>
}

afterEach(() => {
  created.length = 0
  vi.restoreAllMocks()
})

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

  it("the client React 18 throws away holds nothing: no listener, timer, request or database; the kept one lets go of all of them on unmount", async () => {
    const server = await startServer({ greeting: 'hello' })
    const opened: string[] = []
    const open = indexedDB.open.bind(indexedDB)
    vi.spyOn(indexedDB, 'open').mockImplementation((name, version) => (opened.push(name), open(name, version)))
    const { unmount } = render(
      <StrictMode>
        <FlagProvider {...clientOptions(server, { refreshIntervalMs: 60_000, events: { url: server.eventsUrl } })}>
          <Greeting />
        </FlagProvider>
      </StrictMode>,
    )
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
    const [kept, ...thrownAway] = [...created].sort((a, b) => b.start.calls - a.start.calls)
    expect(thrownAway.length).toBe(version.startsWith('18.') ? 1 : 0)
    // The kept client is alive: it listens, has its poll timer, fetched, and opened its database.
    expect(kept.listening).toBeGreaterThan(0)
    expect(kept.timers.size).toBeGreaterThan(0)
    expect(kept.fetches).toBeGreaterThan(0)
    expect(opened).toContain(kept.storageName)
    for (const other of thrownAway) {
      expect(other).toMatchObject({ listening: 0, fetches: 0, start: { calls: 0 } })
      expect(other.timers.size).toBe(0)
      expect(opened).not.toContain(other.storageName)
    }
    unmount()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(kept.close.calls).toBe(1)
    // Listeners go at once; the bounded last flush of the events keeps one timer until close() resolves.
    expect(kept.listening).toBe(0)
    await kept.closed
    expect(kept.timers.size).toBe(0)
    for (const other of thrownAway) expect(other).toMatchObject({ listening: 0, fetches: 0 })
  })
})
