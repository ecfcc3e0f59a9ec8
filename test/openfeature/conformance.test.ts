// What the OpenFeature SDK expects of a provider, checked with the official @openfeature/web-sdk:
// status transitions (NOT_READY until initialized, no evaluation reaching the provider before),
// hooks in their stages with full evaluation details, API-level events, lifecycle (onClose closes
// only a client the provider made; a provider set again starts afresh), and the flagd-testbed's
// evaluation scenarios (OpenFeature's Gherkin) resolved through the SDK.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCode, OpenFeature, ProviderEvents, ProviderStatus, type Hook, type JsonValue } from '@openfeature/web-sdk'
import { describe, expect, it, test } from 'vitest'
import { createClient } from '@holdfast/core'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createFlagServer } from '@holdfast/server'
import { startServer } from '../server/helpers'
import { createFaultServer, flags } from '../support/faultServer'
import { connect, settle, until } from './support'
import { outlines, typed } from '../support/gherkin'

const quiet = { warn() {}, error() {} }

describe('provider lifecycle as the SDK sees it', () => {
  it('NOT_READY until initialize resolves; evaluations meanwhile get PROVIDER_NOT_READY from the SDK', async () => {
    const fault = await createFaultServer('hang')
    try {
      const { client, events } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory', wait: false })
      expect(client.providerStatus).toBe(ProviderStatus.NOT_READY)
      expect(client.getBooleanDetails('a', true)).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.PROVIDER_NOT_READY })
      // The first request is out and hangs: still nothing to be READY about.
      await fault.waitForRequests(1)
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.NOT_READY)
      expect(events).toEqual([])
    } finally {
      await fault.close()
    }
  })

  it('runs hooks in order with the full evaluation details, and error hooks for a missing flag', async () => {
    const server = await startServer()
    const { client } = await connect(server.url, { targetingKey: 'user-1' }, { storage: 'memory' })
    const calls: string[] = []
    const hook: Hook = {
      before: (ctx) => void calls.push(`before:${ctx.flagKey}:${ctx.context.targetingKey}`),
      after: (_ctx, details) => void calls.push(`after:${details.flagKey}:${details.value}:${details.reason}:${details.flagMetadata.source}`),
      error: (_ctx, error) => void calls.push(`error:${(error as { code?: string }).code}`),
      finally: (_ctx, details) => void calls.push(`finally:${details.flagKey}:${details.reason}`),
    }
    client.addHooks(hook)
    client.getStringValue('greeting', 'x')
    client.getBooleanValue('missing', false)
    expect(calls).toEqual([
      'before:greeting:user-1',
      'after:greeting:Hi:STATIC:network',
      'finally:greeting:STATIC',
      'before:missing:user-1',
      'error:FLAG_NOT_FOUND',
      'finally:missing:ERROR',
    ])
    // The SDK freezes flagMetadata; the provider hands it a fresh object each time.
    expect(Object.isFrozen(client.getStringDetails('greeting', 'x').flagMetadata)).toBe(true)
  })

  it('events reach API-level handlers too', async () => {
    const server = await startServer({ demoControls: true })
    const seen: string[] = []
    const handler = (details?: { domain?: string }) => void seen.push(String(details?.domain))
    OpenFeature.addHandler(ProviderEvents.Stale, handler)
    const { provider, domain } = await connect(server.url, { targetingKey: 'u' }, { storage: 'memory' })
    server.outage!.set({ mode: '503' })
    await provider.client!.refresh()
    await settle()
    expect(seen).toEqual([domain])
    OpenFeature.removeHandler(ProviderEvents.Stale, handler)
  })

  it('onClose closes a client the provider created, and a provider set again starts a fresh one', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    try {
      const { provider, domain, client } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      const first = provider.client!
      await OpenFeature.clearProviders()
      const before = fault.requests.length
      await first.refresh() // a closed client sends nothing
      expect(fault.requests.length).toBe(before)
      expect(provider.client).toBeUndefined()
      await OpenFeature.setProviderAndWait(domain, provider, { targetingKey: 'u' })
      expect(provider.client).not.toBe(first)
      expect(OpenFeature.getClient(domain).getNumberValue('a', 0)).toBe(1)
      expect(client.providerStatus).toBe(ProviderStatus.READY)
    } finally {
      await fault.close()
    }
  })

  it('a provider made with a context starts from it again when set again after onClose', async () => {
    const server = await startServer()
    const provider = new HoldfastWebProvider({ url: server.url, context: { targetingKey: 'user-1' }, storage: 'memory', logger: quiet })
    await OpenFeature.setProviderAndWait('again', provider)
    await OpenFeature.clearProviders()
    await OpenFeature.setProviderAndWait('again', provider)
    expect(OpenFeature.getClient('again').getStringValue('greeting', 'x')).toBe('Hi')
    expect(provider.client!.getContext().targetingKey).toBe('user-1')
  })

  it('never closes a client passed in; switches it to the OpenFeature context', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    try {
      const mine = createClient({ url: fault.url, context: { targetingKey: 'app-user' }, storage: 'memory', refreshOnFocus: false, logger: quiet })
      await OpenFeature.setProviderAndWait('passed-in', new HoldfastWebProvider({ client: mine }), { targetingKey: 'of-user' })
      expect(mine.getContext().targetingKey).toBe('of-user')
      await OpenFeature.clearProviders()
      const before = fault.requests.length
      await mine.refresh()
      expect(fault.requests.length).toBe(before + 1)
      await mine.close()
    } finally {
      await fault.close()
    }
  })

  it('replaced while its first request is in flight: the old provider says nothing afterwards', async () => {
    const fault = await createFaultServer({ status: 503, raw: '', delayMs: 300 })
    const other = await createFaultServer(flags([{ key: 'a', value: 'new provider' }]))
    try {
      const mine = createClient({ url: fault.url, context: { targetingKey: 'u' }, storage: 'memory', refreshOnFocus: false, logger: quiet })
      const old = new HoldfastWebProvider({ client: mine })
      const late: string[] = []
      for (const event of [ProviderEvents.Ready, ProviderEvents.Stale, ProviderEvents.Error, ProviderEvents.ConfigurationChanged]) old.events.addHandler(event, () => void late.push(event))
      OpenFeature.setProvider('replaced', old, { targetingKey: 'u' })
      await fault.waitForRequests(1)
      await OpenFeature.setProviderAndWait('replaced', new HoldfastWebProvider({ url: other.url, storage: 'memory', refreshOnFocus: false, logger: quiet }))
      // The old provider's first attempt ends (503) after it was closed: no event of its own.
      await until(() => mine.getStatus().state !== 'loading', 'the first attempt to end')
      await settle()
      expect(late).toEqual([])
      expect(OpenFeature.getClient('replaced').getStringValue('a', 'x')).toBe('new provider')
      await mine.close()
    } finally {
      await fault.close()
      await other.close()
    }
  })

  it('no targetingKey anywhere: setProviderAndWait rejects with TARGETING_KEY_MISSING (a programmer mistake)', async () => {
    const provider = new HoldfastWebProvider({ url: 'http://127.0.0.1:9', storage: 'memory', logger: quiet })
    await expect(OpenFeature.setProviderAndWait('no-key', provider, {})).rejects.toMatchObject({ code: ErrorCode.TARGETING_KEY_MISSING })
    expect(OpenFeature.getClient('no-key').providerStatus).toBe(ProviderStatus.ERROR)
  })

  it('no targetingKey at start, then OpenFeature.setContext with one: the provider starts for that user', async () => {
    // Before: the SDK said READY after the context change, but no client was ever made: no
    // request went out and every evaluation returned PROVIDER_NOT_READY with the default, for good.
    const fault = await createFaultServer(flags([{ key: 'a', value: 'for u', reason: 'STATIC' }]))
    try {
      const provider = new HoldfastWebProvider({ url: fault.url, storage: 'memory', refreshOnFocus: false, logger: quiet })
      await expect(OpenFeature.setProviderAndWait('late-key', provider, {})).rejects.toMatchObject({ code: ErrorCode.TARGETING_KEY_MISSING })
      const client = OpenFeature.getClient('late-key')
      await OpenFeature.setContext('late-key', { targetingKey: 'u' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'for u', reason: 'STATIC' })
      expect(fault.requests.map((r) => r.body?.context?.targetingKey)).toEqual(['u'])
    } finally {
      await fault.close()
    }
  })

  it('one provider instance cannot serve two domains: the second binding is refused, so no domain shows another user’s values', async () => {
    // Before: the second domain shared the client, and its context change switched the first
    // domain's user too: domain A read user B's values, with reason and metadata claiming they were fresh.
    const fault = await createFaultServer((request) => flags([{ key: 'a', value: `for ${request.body?.context?.targetingKey}` }]))
    try {
      const provider = new HoldfastWebProvider({ url: fault.url, storage: 'memory', refreshOnFocus: false, logger: quiet })
      await OpenFeature.setProviderAndWait('domain-a', provider, { targetingKey: 'A' })
      expect(() => OpenFeature.setProvider('domain-b', provider, { targetingKey: 'B' })).toThrow(/more than one domain/)
      await OpenFeature.setContext('domain-b', { targetingKey: 'B' })
      expect(OpenFeature.getClient('domain-a').getStringValue('a', 'x')).toBe('for A')
      expect(fault.requests.map((r) => r.body?.context?.targetingKey)).toEqual(['A'])
    } finally {
      await fault.close()
    }
  })

  it('an app handler that throws does not stop the provider or the SDK', async () => {
    const server = await startServer({ demoControls: true })
    const { client, provider } = await connect(server.url, { targetingKey: 'u' }, { storage: 'memory' })
    client.addHandler(ProviderEvents.Stale, () => {
      throw new Error('app bug')
    })
    server.outage!.set({ mode: '503' })
    await provider.client!.refresh()
    await until(() => client.providerStatus === ProviderStatus.STALE, 'STALE')
    expect(client.getStringValue('greeting', 'x')).toBe('Hi')
  })

  it('an app logger that throws (with an app handler that throws too): nothing rejects unhandled, nothing throws into the app', async () => {
    const fault = await createFaultServer({ status: 503, raw: '' })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    const broken = () => {
      throw new Error('telemetry down')
    }
    try {
      // The first attempt fails with nothing held: the SDK says READY when initialize resolves, then
      // the provider says ERROR (after the SDK's own handling), and the app's handler throws. (The
      // SDK catches a handler's throw itself: this part held before too.)
      const { client, provider } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory', wait: false, logger: { warn: broken, error: broken } })
      let heard = 0
      client.addHandler(ProviderEvents.Error, () => {
        heard++
        throw new Error('app bug')
      })
      await until(() => heard > 0, 'PROVIDER_ERROR')
      await settle()
      expect(client.getStringValue('greeting', 'x')).toBe('x')
      // The provider's own warnings and errors go to the same logger. Its methods are public and
      // called directly too (a MultiProvider, a test harness): before, the logger's throw came out
      // of them, from the very catch meant to keep a failure in.
      expect(() => provider.track('clicked', {}, { value: 1 })).not.toThrow()
      expect(() => provider.track('clicked', { targetingKey: 'u' }, { value: 1, odd: { nested: true } } as never)).not.toThrow()
      const unreadable = Object.defineProperty({}, 'targetingKey', { enumerable: true, get: broken })
      expect(provider.resolveStringEvaluation('greeting', 'x', unreadable)).toMatchObject({ value: 'x', reason: 'ERROR' })
      await settle()
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
      await fault.close()
    }
  })
})

// --- flagd-testbed evaluation scenarios, through the SDK ------------------------------------------

function evaluate(client: ReturnType<typeof OpenFeature.getClient>, type: string, key: string, defaultValue: JsonValue) {
  if (type === 'Boolean') return client.getBooleanDetails(key, defaultValue as boolean)
  if (type === 'Integer' || type === 'Float') return client.getNumberDetails(key, defaultValue as number)
  if (type === 'Object') return client.getObjectDetails(key, defaultValue as never)
  return client.getStringDetails(key, defaultValue as string)
}

// test/support/shared.ts finds the shared folder from import.meta.url, which this jsdom project
// does not give as a file URL; the same candidates, from the working directory (the repo root).
const testbedDir = [process.env.HOLDFAST_SHARED, join(process.cwd(), '..', 'shared'), '/work/shared']
  .filter((dir): dir is string => !!dir)
  .map((dir) => join(dir, 'ofrep', 'gherkin', 'flagd-testbed'))
  .find((dir) => existsSync(dir))
if (!testbedDir && process.env.CI) throw new Error('[holdfast tests] shared/ofrep/gherkin not found; set HOLDFAST_SHARED')

const read = (name: string) => JSON.parse(readFileSync(join(testbedDir!, name), 'utf8'))
const featureRows = (file: string) =>
  testbedDir
    ? outlines(readFileSync(join(testbedDir, file), 'utf8'))
        .filter((o) => !o.tags.includes('@deprecated') && !o.steps.some((s) => s.includes('selector')))
        .flatMap((o) => o.examples.map((row): Record<string, string> => ({ ...row, outline: o.name, steps: o.steps.join('\n') })))
    : []

describe.skipIf(!testbedDir)('flagd-testbed scenarios through OpenFeature + HoldfastWebProvider', () => {
  const rows = [...featureRows('gherkin_evaluation.feature'), ...featureRows('gherkin_disabled.feature')]

  test('the feature files have the outlines this suite runs', () => {
    expect(rows.length).toBeGreaterThanOrEqual(25)
  })

  test.each(rows)('$outline: $key ($type)', async (row) => {
    const files = ['flags_testing-flags.json', 'flags_zero-flags.json', 'evaluator_flags_testkit-flags.json'].map(read)
    const definitions = {
      flags: Object.assign({}, ...files.map((f) => f.flags ?? {})),
      $evaluators: Object.assign({}, ...files.map((f) => f.$evaluators ?? {})),
    }
    const server = await createFlagServer({ flags: definitions, port: 0, strictValidation: false, logger: { info() {}, warn() {}, error() {} } })
    try {
      const context: Record<string, string> = { targetingKey: 'gherkin-user' }
      const contextStep = /a context containing a key "([^"]+)".*value "([^"]*)"/.exec(row.steps)
      if (contextStep) {
        const value = contextStep[2].replace(/<(\w+)>/g, (_, name) => row[name])
        if (value !== '') context[contextStep[1]] = value
      }
      const reasonStep = /the reason should be "([^"]*)"/.exec(row.steps)
      const expectedReason = reasonStep?.[1].replace(/<(\w+)>/g, (_, name) => row[name])
      const { client } = await connect(server.url, context, { storage: 'memory' })
      const defaultValue = typed(row.type, row.default ?? row.code_default)
      const details = evaluate(client, row.type, row.key, defaultValue)
      const expected = row.resolved_value === undefined ? defaultValue : typed(row.type, row.resolved_value)
      expect(details.value).toEqual(expected)
      if (expectedReason) expect(details.reason).toBe(expectedReason)
      expect(details.errorCode).toBeUndefined()
    } finally {
      await server.close()
    }
  })

  test('metadata: the flag’s metadata is in flagMetadata, beside Holdfast’s source, stale and updatedAt', async () => {
    const server = await createFlagServer({ flags: read('flags_metadata-flags.json'), port: 0, strictValidation: false, logger: { info() {}, warn() {}, error() {} } })
    try {
      const { client } = await connect(server.url, { targetingKey: 'u' }, { storage: 'memory' })
      const details = client.getBooleanDetails('metadata-flag', true)
      expect(details.flagMetadata).toMatchObject({ string: 'a', integer: 1, float: 1.2, boolean: true, source: 'network', stale: false })
    } finally {
      await server.close()
    }
  })
})
