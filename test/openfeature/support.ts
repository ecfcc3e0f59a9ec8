// Shared by the @holdfast/openfeature suite: the official OpenFeature web SDK driving a
// HoldfastWebProvider against real servers on 127.0.0.1. Every test gets its own OpenFeature
// domain, its own IndexedDB name and a manual clock (retries fire only when a test says so);
// providers are cleared after each test.
import { OpenFeature, ProviderEvents, type Client, type EvaluationContext, type EventDetails } from '@openfeature/web-sdk'
import { afterEach } from 'vitest'
import { HoldfastWebProvider, type HoldfastProviderOptions } from '@holdfast/openfeature'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { flags } from '../support/faultServer'

let domains = 0

/** A fault-server reply naming the user asked for: flag `a` is `for <targetingKey>`. */
export const forUser = (request: { body?: { context?: { targetingKey?: string } } }) => flags([{ key: 'a', value: `for ${request.body?.context?.targetingKey}` }])

// The SDK logs a rejected context change with console.error; the tests assert the event instead.
const sdkLog: string[] = []
OpenFeature.setLogger({ error: (...a: unknown[]) => void sdkLog.push(a.map(String).join(' ')), warn: () => {}, info: () => {}, debug: () => {} })

afterEach(async () => {
  await OpenFeature.clearProviders()
  OpenFeature.clearHandlers()
})

/** Every provider event a client sees, in order: `PROVIDER_READY`, `PROVIDER_CONFIGURATION_CHANGED[a,b]`, … */
export function recordEvents(client: Client): string[] {
  const seen: string[] = []
  for (const event of [
    ProviderEvents.Ready,
    ProviderEvents.Stale,
    ProviderEvents.Error,
    ProviderEvents.ConfigurationChanged,
    ProviderEvents.Reconciling,
    ProviderEvents.ContextChanged,
  ]) {
    client.addHandler(event, (details?: EventDetails) => {
      const flags = (details as { flagsChanged?: string[] } | undefined)?.flagsChanged
      const changed = flags ? `[${[...flags].sort().join(',')}]` : ''
      seen.push(`${event}${changed}`)
    })
  }
  return seen
}

export interface Connected {
  domain: string
  client: Client
  provider: HoldfastWebProvider
  events: string[]
  clock: ReturnType<typeof createManualClock>
  logger: ReturnType<typeof createTestLogger>
  /** What `setProviderAndWait` returned (with `wait: false`, still pending when connect returns). */
  ready: Promise<void>
}

/**
 * A fresh domain whose client's events are recorded from the start, then the provider set on it
 * for `context`. `wait: false` does not await setProviderAndWait (its promise is `ready`).
 */
export async function connect(
  url: string,
  context: EvaluationContext,
  options: Partial<Exclude<HoldfastProviderOptions, { client: unknown }>> & { wait?: boolean } = {},
): Promise<Connected> {
  const domain = `holdfast-of-${++domains}`
  const clock = createManualClock()
  const logger = createTestLogger()
  const { wait = true, ...rest } = options
  const provider = new HoldfastWebProvider({
    url,
    storageName: uniqueStorageName('of'),
    refreshOnFocus: false,
    requestTimeoutMs: 3000,
    clock,
    logger,
    ...rest,
  })
  const client = OpenFeature.getClient(domain)
  const events = recordEvents(client)
  await OpenFeature.setContext(domain, context)
  const ready = OpenFeature.setProviderAndWait(domain, provider)
  if (wait) await ready
  // Not awaited: a test that does not look at it must not fail on an unhandled rejection.
  else ready.catch(() => {})
  return { domain, client, provider, events, clock, logger, ready }
}

/** Polls `check` (real time) until it holds; generous, because the machine is shared. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Lets pending microtasks and the SDK's event handlers run. */
export const settle = () => new Promise((r) => setTimeout(r, 0))
