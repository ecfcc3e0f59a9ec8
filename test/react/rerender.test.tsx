// A component re-renders only when a flag it reads changes: 1,000 readers of 1,000 flags, one
// flag changes, one component renders again.
import { act, render, screen, waitFor } from './rtl'
import { Profiler, type ReactElement } from 'react'
import { describe, expect, it } from 'vitest'
import { FlagProvider, createClient, useFlagDetails, useFlagStatus, useGate, useValue, type FlagClient } from '@holdfast/react'
import { clientOptions, startServer, track } from './testServer'

const N = 1000

/** N readers, `<Reader i={0..N-1}>`, under one provider of `client`. */
function renderReaders(client: FlagClient, Reader: (props: { i: number }) => ReactElement) {
  render(
    <FlagProvider client={client}>
      <ul>
        {Array.from({ length: N }, (_, i) => (
          <Reader key={i} i={i} />
        ))}
      </ul>
    </FlagProvider>,
  )
}

function manyFlags(): Record<string, number> {
  return Object.fromEntries(Array.from({ length: N }, (_, i) => [`flag-${i}`, i]))
}

describe('re-render scope', () => {
  it('re-renders exactly the one component whose flag changed, out of 1,000', async () => {
    const server = await startServer(manyFlags())
    const client = track(createClient(clientOptions(server)))
    const renders = new Array<number>(N).fill(0)

    function Reader({ i }: { i: number }) {
      renders[i]++
      const value = useValue(`flag-${i}`, -1)
      return <li data-testid={`r${i}`}>{value}</li>
    }
    renderReaders(client, Reader)
    expect(screen.getByTestId('r0').textContent).toBe('-1')
    await waitFor(() => expect(screen.getByTestId(`r${N - 1}`).textContent).toBe(String(N - 1)))
    expect(screen.getByTestId('r500').textContent).toBe('500')

    const before = [...renders]
    server.flags = { ...server.flags, 'flag-500': 5000 }
    await act(() => client.refresh())

    expect(screen.getByTestId('r500').textContent).toBe('5000')
    const rerendered = renders.map((count, i) => count - before[i]).flatMap((delta, i) => (delta > 0 ? [i] : []))
    expect(rerendered).toEqual([500])
    expect(renders[500] - before[500]).toBe(1)
  })

  it('a refresh that changes nothing renders nothing (Profiler commits)', async () => {
    const server = await startServer({ a: true, b: false })
    const client = track(createClient(clientOptions(server)))
    await client.start()
    let commits = 0
    function Gates() {
      return (
        <span>
          {String(useGate('a'))}/{String(useGate('b', true))}
        </span>
      )
    }
    render(
      <FlagProvider client={client}>
        <Profiler id="gates" onRender={() => commits++}>
          <Gates />
        </Profiler>
      </FlagProvider>,
    )
    expect(screen.getByText('true/false')).toBeTruthy()
    const after = commits
    await act(() => client.refresh())
    await act(() => client.refresh())
    expect(commits).toBe(after)
    expect(server.requests.length).toBe(3)
  })
})

describe('outage and recovery', () => {
  for (const mode of ['error', 'empty'] as const) {
    it(`a ${mode === 'error' ? '500' : '{}'} keeps every rendered value, reports stale, and recovery re-renders only changed flags`, async () => {
      const server = await startServer({ a: 1, b: 2, c: 3 })
      const options = clientOptions(server)
      const client = track(createClient(options))
      const renders: Record<string, number> = { a: 0, b: 0, c: 0 }
      function Reader({ k }: { k: string }) {
        renders[k]++
        return <li data-testid={k}>{useValue(k, 0)}</li>
      }
      function StatusLine() {
        return <p data-testid="status">{useFlagStatus().state}</p>
      }
      render(
        <FlagProvider client={client}>
          <StatusLine />
          <Reader k="a" />
          <Reader k="b" />
          <Reader k="c" />
        </FlagProvider>,
      )
      await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('ready'))
      expect(['a', 'b', 'c'].map((k) => screen.getByTestId(k).textContent)).toEqual(['1', '2', '3'])
      const before = { ...renders }

      server.mode = mode
      await act(() => client.refresh())
      expect(screen.getByTestId('status').textContent).toBe('stale')
      expect(['a', 'b', 'c'].map((k) => screen.getByTestId(k).textContent)).toEqual(['1', '2', '3'])
      expect(renders).toEqual(before)
      expect(options.logger.warnings.join('\n')).toMatch(mode === 'error' ? /HTTP/ : /INVALID_RESPONSE/)

      server.mode = 'ok'
      server.flags = { a: 1, b: 20, c: 3 }
      await act(() => client.refresh())
      expect(screen.getByTestId('status').textContent).toBe('ready')
      expect(['a', 'b', 'c'].map((k) => screen.getByTestId(k).textContent)).toEqual(['1', '20', '3'])
      expect({ a: renders.a - before.a, b: renders.b - before.b, c: renders.c - before.c }).toEqual({ a: 0, b: 1, c: 0 })
    })
  }
})

describe('a flag held by no answer', () => {
  it("an outage and its recovery re-render each useFlagDetails of a missing flag once (its default's stale flips), and no useGate of it nor any reader of a held flag, out of 1,000", async () => {
    const server = await startServer(manyFlags())
    const client = track(createClient(clientOptions(server)))
    await client.start()
    const renders = new Array<number>(N).fill(0)
    // 0-249: useFlagDetails of a missing flag; 250-499: useGate of a missing flag; 500-999: useValue of a held one.
    function Reader({ i }: { i: number }) {
      renders[i]++
      if (i < 250) return <li data-testid={`r${i}`}>{String(useFlagDetails(`gone-${i}`, false).stale)}</li>
      if (i < 500) return <li data-testid={`r${i}`}>{String(useGate(`gone-${i}`))}</li>
      return <li data-testid={`r${i}`}>{useValue(`flag-${i}`, -1)}</li>
    }
    renderReaders(client, Reader)
    const shown = () => [0, 249, 250, 999].map((i) => screen.getByTestId(`r${i}`).textContent)
    expect(shown()).toEqual(['false', 'false', 'false', '999'])
    const delta = (before: number[]) => renders.map((count, i) => count - before[i])
    const detailsReaders = Array.from({ length: 250 }, (_, i) => i)

    let before = [...renders]
    server.mode = 'error'
    await act(() => client.refresh())
    expect(client.getStatus().state).toBe('stale')
    expect(shown()).toEqual(['true', 'true', 'false', '999'])
    expect(delta(before).flatMap((d, i) => (d > 0 ? [i] : []))).toEqual(detailsReaders)
    expect(Math.max(...delta(before))).toBe(1)

    // A second failure flips nothing.
    before = [...renders]
    await act(() => client.refresh())
    expect(delta(before).every((d) => d === 0)).toBe(true)

    before = [...renders]
    server.mode = 'ok'
    await act(() => client.refresh())
    expect(client.getStatus().state).toBe('ready')
    expect(shown()).toEqual(['false', 'false', 'false', '999'])
    expect(delta(before).flatMap((d, i) => (d > 0 ? [i] : []))).toEqual(detailsReaders)
    expect(Math.max(...delta(before))).toBe(1)
  })
})
