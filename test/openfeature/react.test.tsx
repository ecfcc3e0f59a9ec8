// @openfeature/react-sdk on top of HoldfastWebProvider, against the reference server: suspense
// until values are held, useFlag / useBooleanFlagValue values and details, a change to one flag
// re-rendering only its reader, an outage shown as reason STALE, a user switch without a flash of
// defaults, and the example in examples/openfeature-react rendered and type-checked.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Suspense } from 'react'
import ts from 'typescript'
import { OpenFeature, OpenFeatureProvider, useBooleanFlagValue, useFlag } from '@openfeature/react-sdk'
import { afterEach, describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { FlagProvider, createClient, useValue, type EvaluationContext } from '@holdfast/react'
import { DEMO_FLAGS, startServer } from '../server/helpers'
import { createFaultServer, delayed, flags } from '../support/faultServer'
import { createManualClock, uniqueStorageName } from '../support/clock'
import { act, cleanup, fireEvent, render, screen, waitFor } from '../react/rtl'
import { App, logIn, setUpFlags } from '../../examples/openfeature-react/App'
import './support' // clears providers after each test

const quiet = { warn() {}, error() {} }
afterEach(() => cleanup())
let domains = 0

function provider(url: string, extra: Record<string, unknown> = {}) {
  return new HoldfastWebProvider({ url, storage: 'memory', refreshOnFocus: false, clock: createManualClock(), logger: quiet, ...extra })
}

describe('@openfeature/react-sdk with HoldfastWebProvider', () => {
  it('suspends until the provider holds values, then renders them (useFlag, useBooleanFlagValue)', async () => {
    const fault = await createFaultServer(delayed(flags([{ key: 'on', value: true, variant: 'yes', reason: 'STATIC' }, { key: 'text', value: 'hello' }]), 300))
    try {
      const domain = `react-${++domains}`
      OpenFeature.setProvider(domain, provider(fault.url), { targetingKey: 'u' })
      function Flags() {
        const on = useBooleanFlagValue('on', false)
        const text = useFlag('text', 'default')
        return <p data-testid="flags">{`${on} ${text.value} ${text.reason}`}</p>
      }
      // Awaited act: React 19 queues the suspended tree's retry on act's queue.
      await act(async () => {
        render(
          <OpenFeatureProvider domain={domain} suspendUntilReady>
            <Suspense fallback={<p>loading</p>}>
              <Flags />
            </Suspense>
          </OpenFeatureProvider>,
        )
      })
      expect(screen.getByText('loading')).toBeTruthy()
      await waitFor(() => expect(screen.getByTestId('flags').textContent).toBe('true hello UNKNOWN'), { timeout: 10_000 })
    } finally {
      await fault.close()
    }
  })

  it('one flag changes: only its reader renders again; an outage shows as reason STALE with the values kept', async () => {
    const server = await startServer({ demoControls: true })
    const domain = `react-${++domains}`
    const p = provider(server.url)
    await OpenFeature.setProviderAndWait(domain, p, { targetingKey: 'user-1' })
    const renders: Record<string, number> = { greeting: 0, limit: 0, banner: 0 }
    function Greeting() {
      renders.greeting++
      const d = useFlag('greeting', 'x')
      return <p data-testid="greeting">{`${d.value} ${d.reason}`}</p>
    }
    function Limit() {
      renders.limit++
      return <p data-testid="limit">{useFlag('limit', 0).value}</p>
    }
    function Banner() {
      renders.banner++
      return <p data-testid="banner">{useFlag('banner', { text: '' }).value.text}</p>
    }
    render(
      <OpenFeatureProvider domain={domain}>
        <Greeting />
        <Limit />
        <Banner />
      </OpenFeatureProvider>,
    )
    expect(screen.getByTestId('greeting').textContent).toBe('Hi STATIC')
    const before = { ...renders }
    server.setFlags({ ...DEMO_FLAGS, flags: { ...DEMO_FLAGS.flags, greeting: { ...DEMO_FLAGS.flags.greeting, defaultVariant: 'hello' } } })
    await act(() => p.client!.refresh())
    expect(screen.getByTestId('greeting').textContent).toBe('Hello STATIC')
    expect(renders.greeting - before.greeting).toBe(1)
    expect(renders.limit - before.limit).toBe(0)
    expect(renders.banner - before.banner).toBe(0)

    server.outage!.set({ mode: '503' })
    await act(() => p.client!.refresh())
    expect(screen.getByTestId('greeting').textContent).toBe('Hello STALE')
    expect(screen.getByTestId('limit').textContent).toBe('5')
    expect(screen.getByTestId('banner').textContent).toBe('Hello')
  })

  it('a user switch never shows the defaults in between', async () => {
    const server = await startServer()
    const domain = `react-${++domains}`
    await OpenFeature.setProviderAndWait(domain, provider(server.url), { targetingKey: 'user-1', plan: 'free' })
    const seen: string[] = []
    function Beta() {
      const beta = useBooleanFlagValue('beta', false)
      const greeting = useFlag('greeting', 'DEFAULT').value
      seen.push(`${beta}/${greeting}`)
      return <p data-testid="beta">{String(beta)}</p>
    }
    render(
      <OpenFeatureProvider domain={domain}>
        <Beta />
      </OpenFeatureProvider>,
    )
    expect(screen.getByTestId('beta').textContent).toBe('false')
    await act(() => OpenFeature.setContext(domain, { targetingKey: 'user-2', plan: 'pro' }))
    expect(screen.getByTestId('beta').textContent).toBe('true')
    expect(seen.every((s) => !s.endsWith('/DEFAULT'))).toBe(true)
  })

  it('the example (examples/openfeature-react) renders, tracks a click exactly once, and says when values are a saved copy', async () => {
    const definitions = JSON.parse(readFileSync(join(process.cwd(), 'examples/flags.json'), 'utf8'))
    const server = await startServer({ flags: definitions, demoControls: true })
    const p = setUpFlags(server.url, { id: 'user-1', plan: 'free' })
    await act(async () => {
      render(<App />)
    })
    expect(screen.getByText('Loading…')).toBeTruthy()
    await waitFor(() => expect(screen.getByText('Welcome to the Holdfast demo shop')).toBeTruthy(), { timeout: 10_000 })
    const variant = screen.getByRole('button').textContent === 'New checkout' ? 'new' : 'classic'
    fireEvent.click(screen.getByRole('button'))
    server.outage!.set({ mode: '503' })
    await act(() => p.client!.refresh())
    expect(screen.getByText(/saved copy/)).toBeTruthy()
    await act(() => logIn({ id: 'user-2', plan: 'pro' }))
    cleanup() // the page goes away: unmount, then close (which flushes the provider's events)
    await OpenFeature.close()
    const clicks = server.events().filter((e) => e.name === 'checkout-clicked')
    expect(clicks).toHaveLength(1)
    expect(clicks[0]).toMatchObject({ type: 'custom', value: 1, targetingKey: 'user-1', metadata: { variant } })
  })

  it('the example type-checks against the public entry points', () => {
    const base = ts.readConfigFile(join(process.cwd(), 'tsconfig.base.json'), ts.sys.readFile)
    const parsed = ts.parseJsonConfigFileContent(base.config, ts.sys, process.cwd())
    const program = ts.createProgram([join(process.cwd(), 'examples/openfeature-react/App.tsx')], { ...parsed.options, noEmit: true })
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(problems).toEqual([])
  }, 60_000)
})

describe('one Holdfast client shared by <FlagProvider> and HoldfastWebProvider', () => {
  it('an app that names its user only through <FlagProvider context> (no OpenFeature context): a switch shows the new user in both bindings', async () => {
    const fault = await createFaultServer((request) => flags([{ key: 'who', value: String(request.body?.context?.targetingKey) }]))
    const shared = createClient({ url: fault.url, context: { targetingKey: 'dave' }, storage: 'memory', storageName: uniqueStorageName('shared'), refreshOnFocus: false, clock: createManualClock(), logger: quiet })
    try {
      const domain = `react-${++domains}`
      // No OpenFeature context (an empty one for this domain, whatever an earlier test left globally):
      // the provider serves the client it was given, whoever React puts it on.
      await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared, logger: quiet }), {})
      function Who() {
        return <p data-testid="who">{`${useValue('who', 'DEFAULT')} ${useFlag('who', 'DEFAULT').value}`}</p>
      }
      const page = (targetingKey: string) => (
        <OpenFeatureProvider domain={domain}>
          <FlagProvider client={shared} context={{ targetingKey }}>
            <Who />
          </FlagProvider>
        </OpenFeatureProvider>
      )
      const { rerender } = render(page('dave'))
      await waitFor(() => expect(screen.getByTestId('who').textContent).toBe('dave dave'))
      rerender(page('erin'))
      // Before: the OpenFeature reader showed DEFAULT (INVALID_CONTEXT) for erin for good.
      await waitFor(() => expect(screen.getByTestId('who').textContent).toBe('erin erin'))
    } finally {
      await shared.close()
      await fault.close()
    }
  })

  it('after an OpenFeature logout paused it, the React context prop logging the same user in fetches again and polls again', async () => {
    const fault = await createFaultServer(flags([{ key: 'plan', value: 'free' }]))
    const clock = createManualClock()
    const shared = createClient({ url: fault.url, context: { targetingKey: 'user-1' }, storage: 'memory', storageName: uniqueStorageName('shared'), refreshOnFocus: false, refreshIntervalMs: 30_000, clock, logger: quiet })
    try {
      const domain = `react-${++domains}`
      await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared }), { targetingKey: 'user-1' })
      function Plan() {
        return <p data-testid="plan">{useValue('plan', 'DEFAULT')}</p>
      }
      const page = (user?: EvaluationContext) => (
        <FlagProvider client={shared} context={user}>
          <Plan />
        </FlagProvider>
      )
      const { rerender } = render(page({ targetingKey: 'user-1' }))
      await waitFor(() => expect(screen.getByTestId('plan').textContent).toBe('free'))
      const before = fault.requests.length

      // The logout: OpenFeature is told (the provider pauses the client), and so is React.
      await OpenFeature.setContext(domain, {})
      rerender(page(undefined))
      // The same user logs back in, through React.
      fault.always(flags([{ key: 'plan', value: 'pro' }]))
      rerender(page({ targetingKey: 'user-1' }))
      // Before: the prop equalled the client's context, so no setContext: paused for good, no request, 'free' forever.
      await waitFor(() => expect(screen.getByTestId('plan').textContent).toBe('pro'))
      expect(fault.requests.length).toBe(before + 1)
      clock.advance(30_000)
      await fault.waitForRequests(before + 2)
    } finally {
      await shared.close()
      await fault.close()
    }
  })
})
