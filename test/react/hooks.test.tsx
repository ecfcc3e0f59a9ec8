// The hooks as a user meets them: the React version under test, the error outside a provider,
// inline defaults, details and status.
import { useState, version as reactVersion, type ReactNode } from 'react'
import { version as reactDomVersion } from 'react-dom'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  FlagProvider,
  createClient,
  useConfig,
  useFlagClient,
  useFlagDetails,
  useEventStats,
  useFlagStatus,
  useGate,
  useValue,
  type FlagClient,
} from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer, track } from './testServer'

afterEach(() => {
  vi.restoreAllMocks()
})

it('runs against the React major its project names', ({ task }) => {
  const expected = task.file.projectName === 'react18' ? '18.' : '19.'
  expect(task.file.projectName).toMatch(/^react1[89]$/)
  expect(reactVersion.startsWith(expected)).toBe(true)
  expect(reactDomVersion.startsWith(expected)).toBe(true)
})

describe('outside a provider', () => {
  const hooks: Array<[string, () => unknown]> = [
    ['useGate', () => useGate('a')],
    ['useConfig', () => useConfig('a')],
    ['useValue', () => useValue('a', 1)],
    ['useFlagDetails', () => useFlagDetails('a', 1)],
    ['useFlagStatus', () => useFlagStatus()],
    ['useFlagClient', () => useFlagClient()],
    ['useEventStats', () => useEventStats()],
  ]
  for (const [name, hook] of hooks) {
    it(`${name} throws an error naming itself and <FlagProvider>`, () => {
      // React reports the render error on the console as well; keep the output clean.
      vi.spyOn(console, 'error').mockImplementation(() => {})
      const onError = (event: ErrorEvent) => event.preventDefault()
      window.addEventListener('error', onError)
      function Reader() {
        hook()
        return null
      }
      try {
        expect(() => render(<Reader />)).toThrow(`[holdfast] ${name} must be used inside <FlagProvider>`)
      } finally {
        window.removeEventListener('error', onError)
      }
    })
  }
})

describe('values', () => {
  it('reads gates, configs and values of every JSON type, with defaults for what is missing or mistyped', async () => {
    const server = await startServer({ gate: true, config: { limit: 3 }, text: 'hi', n: 7, list: [1, 2], wrong: 'yes' })
    function Flags() {
      const config = useConfig<{ limit?: number }>('config')
      return (
        <p>
          {[
            useGate('gate'),
            useGate('missing'),
            useGate('wrong', true),
            config.limit,
            useConfig<{ limit?: number }>('missing', { limit: 9 }).limit,
            useValue('text', ''),
            useValue('n', 0),
            useValue<number[]>('list', []).join('+'),
          ]
            .map(String)
            .join(' ')}
        </p>
      )
    }
    render(
      <FlagProvider {...clientOptions(server)}>
        <Flags />
      </FlagProvider>,
    )
    expect(screen.getByRole('paragraph').textContent).toBe('false false true undefined 9  0 ')
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('true false true 3 9 hi 7 1+2'))
  })

  it('an inline object default (a new object every render) neither loops nor re-renders', async () => {
    const server = await startServer({ other: 1 })
    const client = track(createClient(clientOptions(server)))
    await client.start()
    let renders = 0
    const seen: object[] = []
    let bump: () => void = () => {}
    function Reader() {
      renders++
      const [n, setN] = useState(0)
      bump = () => setN(n + 1)
      const config = useConfig('missing', { size: 'm' })
      seen.push(config)
      return <p>{`${config.size}${n}`}</p>
    }
    vi.spyOn(console, 'error')
    render(
      <FlagProvider client={client}>
        <Reader />
      </FlagProvider>,
    )
    expect(screen.getByText('m0')).toBeTruthy()
    await act(() => client.refresh())
    act(() => bump())
    expect(screen.getByText('m1')).toBeTruthy()
    expect(renders).toBe(2)
    expect(new Set(seen).size).toBe(1)
    expect(console.error).not.toHaveBeenCalled()
  })

  it('two readers of one flag with different defaults do not re-render each other in a loop', async () => {
    const server = await startServer({ present: 1 })
    const client = track(createClient(clientOptions(server)))
    await client.start()
    let renders = 0
    function Reader({ fallback }: { fallback: number }) {
      renders++
      const details = useFlagDetails('absent', fallback)
      return <li>{`${details.value}:${details.errorCode}`}</li>
    }
    vi.spyOn(console, 'error')
    render(
      <FlagProvider client={client}>
        <Reader fallback={1} />
        <Reader fallback={2} />
      </FlagProvider>,
    )
    expect(screen.getAllByRole('listitem').map((li) => li.textContent)).toEqual(['1:FLAG_NOT_FOUND', '2:FLAG_NOT_FOUND'])
    await act(() => client.refresh())
    expect(renders).toBe(2)
    expect(console.error).not.toHaveBeenCalled()
  })

  it('useFlagDetails shows source, variant and staleness; useFlagStatus follows the status', async () => {
    const server = await startServer({ plan: 'pro' })
    const client = track(createClient(clientOptions(server)))
    function Details() {
      const d = useFlagDetails('plan', 'free')
      const status = useFlagStatus()
      return <p>{`${d.value} ${d.source} ${d.variant} ${d.stale} ${status.state}`}</p>
    }
    render(
      <FlagProvider client={client}>
        <Details />
      </FlagProvider>,
    )
    expect(screen.getByRole('paragraph').textContent).toBe('free default undefined false loading')
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('pro network "pro" false ready'))
    server.mode = 'error'
    await act(() => client.refresh())
    expect(screen.getByRole('paragraph').textContent).toBe('pro network "pro" true stale')
  })

  // CONTRACT §3 Details.stale "true when the latest attempt failed": also for the caller's default
  // of a flag the client holds nothing for, and the component hears it both ways.
  it('useFlagDetails of a flag not held shows stale once an attempt fails, and fresh again once an answer confirms it missing', async () => {
    const server = await startServer({ plan: 'pro' })
    const client = track(createClient(clientOptions(server)))
    function Details() {
      const d = useFlagDetails('beta', false)
      return <p>{`${d.value} ${d.source} ${d.errorCode} ${d.stale}`}</p>
    }
    render(
      <FlagProvider client={client}>
        <Details />
      </FlagProvider>,
    )
    await waitFor(() => expect(client.getStatus().state).toBe('ready'))
    expect(screen.getByRole('paragraph').textContent).toBe('false default FLAG_NOT_FOUND false')
    server.mode = 'error'
    await act(() => client.refresh())
    expect(screen.getByRole('paragraph').textContent).toBe('false default FLAG_NOT_FOUND true')
    server.mode = 'ok'
    await act(() => client.refresh())
    expect(screen.getByRole('paragraph').textContent).toBe('false default FLAG_NOT_FOUND false')
  })

  it('useFlagClient hands out the provider client', async () => {
    const server = await startServer()
    const client = track(createClient(clientOptions(server)))
    let got: FlagClient | undefined
    function Grab(): ReactNode {
      got = useFlagClient()
      return null
    }
    render(
      <FlagProvider client={client}>
        <Grab />
      </FlagProvider>,
    )
    expect(got).toBe(client)
  })

  it('useEventStats shows events waiting and sent', async () => {
    const server = await startServer({ a: true })
    const client = track(createClient({ ...clientOptions(server), events: { url: server.eventsUrl, exposures: false, flushIntervalMs: 60_000 } }))
    function Queue() {
      const { queued, sent } = useEventStats()
      return <p>{`${queued} waiting, ${sent} sent`}</p>
    }
    render(
      <FlagProvider client={client}>
        <Queue />
      </FlagProvider>,
    )
    expect(screen.getByRole('paragraph').textContent).toBe('0 waiting, 0 sent')
    act(() => {
      client.logEvent('one')
      client.logEvent('two')
    })
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('2 waiting, 0 sent'))
    await act(() => client.flush())
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('0 waiting, 2 sent'))
    expect(server.events.map((e) => e.name)).toEqual(['one', 'two'])
  })
})
