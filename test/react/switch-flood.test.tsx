// `<FlagProvider context={{ targetingKey: id, at: new Date() }}>`: a context with an attribute that
// changes on every render is a setContext per render. Before, that was one bulk request per render
// (60 renders at 16 ms against a 250 ms server: 60 requests). The provider must cost about one
// request per round trip and end on the last render's context.
import { expect, it } from 'vitest'
import { FlagProvider, useFlagDetails, type EvaluationContext } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { createFaultServer, delayed, flags, type RecordedRequest } from '../support/faultServer'

/** The server's answer names the context it was computed for, after a 250 ms round trip. */
const echoSlowly = (request: RecordedRequest) => delayed(flags([{ key: 'at', value: String(request.body.context.at) }]) as never, 250)

function At() {
  const { value, source } = useFlagDetails('at', 'DEFAULT')
  return <p>{`${value} ${source}`}</p>
}

it('a context prop that changes on every render sends about one request per round trip, and shows the last render’s values', async () => {
  const server = await createFaultServer(echoSlowly)
  try {
    const app = (context: EvaluationContext) => (
      <FlagProvider url={server.url} context={context} storage="memory" liveUpdates={false} logger={{ warn() {}, error() {} }}>
        <At />
      </FlagProvider>
    )
    const { rerender, unmount } = render(app({ targetingKey: 'alice', at: -1 }))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('-1 network'))
    const before = server.requests.length
    const began = Date.now()
    for (let i = 0; i < 60; i++) {
      rerender(app({ targetingKey: 'alice', at: i }))
      await act(() => new Promise((resolve) => setTimeout(resolve, 16)))
    }
    const burstMs = Date.now() - began
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('59 network'))
    // 960 ms of renders against a 250 ms round trip: about 6 requests (one out at a time, each for the
    // latest context when the one before settled). Before: 60. One per round trip of the burst as
    // it really ran (a busy machine stretches it), plus the abandoned first one and the last one.
    expect(server.requests.length - before).toBeLessThanOrEqual(Math.ceil(burstMs / 250) + 3)
    expect(server.requests.filter((r) => r.abandoned).length).toBeLessThanOrEqual(1)
    unmount()
  } finally {
    await server.close()
  }
})
