// One store notification that moves nothing a hook shows (an exposure queued: the event counts)
// costs each mounted hook nothing: 1,000 readers, each logging its exposure at mount, must not
// re-read every flag once per exposure (1,000 x 1,000 evaluations).
import { render, screen, waitFor } from './rtl'
import { describe, expect, it } from 'vitest'
import { FlagProvider, createClient, useValue, type FlagClient } from '@holdfast/react'
import { clientOptions, startServer, track } from './testServer'

const N = 1000

describe('status listeners of many hooks', () => {
  it('1,000 readers logging their exposures at mount read each flag a few times, not once per exposure', async () => {
    const server = await startServer(Object.fromEntries(Array.from({ length: N }, (_, i) => [`flag-${i}`, i])))
    const client = track(createClient(clientOptions(server, { events: { url: server.eventsUrl, flushIntervalMs: 60_000 }, refreshOnFocus: false })))
    await client.start()
    let reads = 0
    const counted: FlagClient = { ...client, getDetails: (...args: Parameters<FlagClient['getDetails']>) => (reads++, client.getDetails(...args)) } as FlagClient
    function Reader({ i }: { i: number }) {
      return <li data-testid={`r${i}`}>{useValue(`flag-${i}`, -1)}</li>
    }
    render(
      <FlagProvider client={counted}>
        <ul>
          {Array.from({ length: N }, (_, i) => (
            <Reader key={i} i={i} />
          ))}
        </ul>
      </FlagProvider>,
    )
    expect(screen.getByTestId(`r${N - 1}`).textContent).toBe(String(N - 1))
    // Every reader's exposure is queued (one event-count update each), none sent yet.
    await waitFor(() => expect(client.getEventStats().queued).toBe(N))
    // A few reads per reader (render, subscribe, commit), not one per reader per exposure (~500,000).
    expect(reads).toBeLessThan(5 * N)
  })
})
