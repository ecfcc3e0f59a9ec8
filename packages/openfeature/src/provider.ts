// HoldfastWebProvider: the OpenFeature web `Provider` backed by a Holdfast client (CONTRACT §11).
//
// Who says what when. The OpenFeature SDK itself emits PROVIDER_READY when `initialize` resolves,
// and PROVIDER_RECONCILING / PROVIDER_CONTEXT_CHANGED around `onContextChange`; in those windows the
// provider stays quiet (a READY of its own would be a duplicate). Once the SDK has spoken, the
// provider compares Holdfast's status with what the SDK now believes and emits the difference:
//
//   initialize() resolves ──► SDK: PROVIDER_READY ──► provider: PROVIDER_STALE if the first
//                                                     attempt failed while cached values are held
//
// From then on every Holdfast change batch (one response, one failure) gives at most one status
// event (READY / STALE / ERROR, only when the state moves) followed by at most one
// PROVIDER_CONFIGURATION_CHANGED naming the flags whose details changed.
import { OpenFeatureEventEmitter, ProviderEvents, TargetingKeyMissingError, InvalidContextError, GeneralError, ErrorCode } from '@openfeature/web-sdk'
import type {
  EvaluationContext as OpenFeatureContext,
  JsonValue,
  Provider,
  ProviderEmittableEvents,
  ProviderMetadata,
  ResolutionDetails,
  TrackingEventDetails,
} from '@openfeature/web-sdk'
import { createClient, type ClientOptions, type Details, type FlagClient, type Logger, type Status } from '@holdfast/core'
import { createChangeTracker } from './changeTracker'
import { isEmptyContext, toHoldfastContext } from './context'
import { toEventOptions } from './eventDetails'
import { toErrorCode, toResolution } from './resolution'

/**
 * Options of {@link HoldfastWebProvider} when it creates its own client: Holdfast's
 * `ClientOptions`, with `context` optional. Without one, the client is created in `initialize`
 * from the OpenFeature context (which then needs a `targetingKey`).
 */
export type HoldfastClientProviderOptions = Omit<ClientOptions, 'context'> & { context?: ClientOptions['context'] }

/**
 * What `new HoldfastWebProvider(…)` takes: client options (the provider creates, starts and, on
 * `onClose`, closes the client), or `{ client }`, a client the app made and keeps owning (the
 * provider starts it if needed and never closes it).
 */
export type HoldfastProviderOptions = HoldfastClientProviderOptions | { client: FlagClient; logger?: Logger }

type Reported = 'NOT_READY' | 'READY' | 'STALE' | 'ERROR'

const noop = () => {}

/**
 * An OpenFeature web provider (`@openfeature/web-sdk`, and so `@openfeature/react-sdk`) backed by
 * a Holdfast client: its last known good values, its IndexedDB cache and its persisted event
 * queue. Evaluations are synchronous lookups in Holdfast's store. `initialize` resolves as soon as
 * values are held (cache or bootstrap) or the first attempt settled, and never rejects on a
 * network failure, so `await OpenFeature.setProviderAndWait(provider)` cannot throw into the app
 * because the flag server is down. A provider instance serves one OpenFeature domain at a time.
 */
export class HoldfastWebProvider implements Provider {
  /** `{ name: 'holdfast' }`. */
  readonly metadata: ProviderMetadata = { name: 'holdfast' }
  /** Browser (static context) paradigm. */
  readonly runsOn = 'client' as const
  /** Where the provider's events go; the OpenFeature SDK listens here. */
  readonly events = new OpenFeatureEventEmitter()

  private readonly impl: ReturnType<typeof createProviderImpl>

  /** See {@link HoldfastProviderOptions}. Creates no client yet unless a `context` is given; nothing is fetched until `initialize`. */
  constructor(options: HoldfastProviderOptions) {
    this.impl = createProviderImpl(options, this.events)
  }

  /** The Holdfast client behind the provider (undefined until `initialize` when no context was given). */
  get client(): FlagClient | undefined {
    return this.impl.client()
  }

  /**
   * Starts the client for `context` (the OpenFeature context; when it has a `targetingKey` it wins
   * over the options' context). Resolves once values are held or the first attempt settled.
   * Rejects only when no `targetingKey` is known at all (a programmer mistake), or when the
   * server rejected the credentials (401/403) or the context (400) and no value is held.
   */
  initialize(context?: OpenFeatureContext): Promise<void> {
    return this.impl.initialize(context)
  }

  /** Switches the user as Holdfast's `setContext` does: their cached values at once, no flash, no other context's ETag. */
  onContextChange(oldContext: OpenFeatureContext, newContext: OpenFeatureContext): Promise<void> {
    return this.impl.onContextChange(oldContext, newContext)
  }

  /** Closes the client if the provider created it (flushing events); a client passed in is only let go. */
  onClose(): Promise<void> {
    return this.impl.close()
  }

  /** A boolean flag from Holdfast's store; never throws. */
  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean): ResolutionDetails<boolean> {
    return this.impl.resolve(flagKey, defaultValue)
  }

  /** A string flag from Holdfast's store; never throws. */
  resolveStringEvaluation(flagKey: string, defaultValue: string): ResolutionDetails<string> {
    return this.impl.resolve(flagKey, defaultValue)
  }

  /** A number flag from Holdfast's store; never throws. */
  resolveNumberEvaluation(flagKey: string, defaultValue: number): ResolutionDetails<number> {
    return this.impl.resolve(flagKey, defaultValue)
  }

  /** An object (or array) flag from Holdfast's store; never throws. */
  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T): ResolutionDetails<T> {
    return this.impl.resolve(flagKey, defaultValue)
  }

  /** Logs a custom event on Holdfast's persisted queue: `details.value` (a finite number) and flat metadata. */
  track(trackingEventName: string, _context: OpenFeatureContext, trackingEventDetails: TrackingEventDetails): void {
    this.impl.track(trackingEventName, trackingEventDetails)
  }
}

function createProviderImpl(options: HoldfastProviderOptions, events: OpenFeatureEventEmitter) {
  const given = 'client' in options ? options.client : undefined
  const logger: Logger = options.logger ?? console
  const initialContext = given ? undefined : (options as HoldfastClientProviderOptions).context
  // With a context the client exists at once, so a `bootstrap` is applied synchronously here.
  let client: FlagClient | undefined = given ?? (initialContext ? makeClient(initialContext) : undefined)
  let unsubscribe: (() => void) | undefined
  let reported: Reported = 'NOT_READY'
  /** > 0 while the SDK owns the status (initializing, reconciling a context): the provider stays quiet. */
  let quiet = 0
  /** Set while the current OpenFeature context has no targetingKey: nothing is served as anyone's. */
  let contextMissing = false
  /**
   * Set when the latest attempt for the current context failed and what the client still holds
   * is not this context's (a switch whose first attempt failed with nothing cached): evaluations
   * return the caller's defaults rather than another user's values.
   */
  let foreign = false
  let lastStatus = ''
  let lastStats = ''
  const tracker = createChangeTracker(() => client)

  function makeClient(context: ClientOptions['context']): FlagClient {
    return given ?? createClient({ ...(options as HoldfastClientProviderOptions), context })
  }

  function emit(event: ProviderEmittableEvents, details: Record<string, unknown> = {}) {
    try {
      events.emit(event, details as never)
    } catch (error) {
      logger.error('[holdfast] an OpenFeature event handler threw', error)
    }
  }

  function target(status: Status): Reported | undefined {
    if (contextMissing) return 'ERROR'
    if (status.state === 'ready') return 'READY'
    if (status.state === 'stale') return 'STALE'
    if (status.state === 'error') return 'ERROR'
    return undefined // loading: nothing new to say until the attempt ends
  }

  function syncStatus() {
    if (!client) return
    const status = client.getStatus()
    const next = target(status)
    if (next === undefined || next === reported) return
    reported = next
    const metadata: Record<string, string | number | boolean> = { state: status.state, source: status.source }
    if (status.error) metadata.code = status.error.code
    if (status.error?.httpStatus !== undefined) metadata.httpStatus = status.error.httpStatus
    if (status.lastSuccessAt !== undefined) metadata.lastSuccessAt = status.lastSuccessAt
    if (next === 'READY') emit(ProviderEvents.Ready, { metadata })
    else if (next === 'STALE') emit(ProviderEvents.Stale, { message: status.error?.message ?? 'the latest attempt failed; serving the last known values', metadata })
    else
      emit(ProviderEvents.Error, {
        message: contextMissing ? 'the OpenFeature context has no targetingKey' : (status.error?.message ?? 'no flag values'),
        errorCode: contextMissing ? ErrorCode.TARGETING_KEY_MISSING : statusErrorCode(status),
        metadata,
      })
  }

  function checkForeign() {
    // snapshot() lists only the flags the client holds for its current context; only read it in
    // the error state, where the question arises.
    foreign = !!client && client.getStatus().state === 'error' && client.snapshot().flags.length === 0
  }

  function onClientChange() {
    checkForeign()
    if (quiet > 0 || !client) return
    // Event counters change with every logged event; they say nothing about flags. Skip the
    // walk over the flags when only they moved.
    const status = JSON.stringify(client.getStatus())
    const stats = JSON.stringify(client.getEventStats())
    const onlyStats = status === lastStatus && stats !== lastStats
    lastStatus = status
    lastStats = stats
    syncStatus()
    if (onlyStats) return
    const flagsChanged = tracker.changed()
    if (flagsChanged.length > 0) emit(ProviderEvents.ConfigurationChanged, { flagsChanged })
  }

  /** Runs after the SDK's own handling of `promise` (its READY, CONTEXT_CHANGED or ERROR). */
  function afterSdk(promise: Promise<void>) {
    // The SDK chains its handler on `promise` synchronously after we return it; a handler chained
    // one microtask later runs after it. The caller has counted itself in `quiet` already.
    queueMicrotask(() => {
      void promise.then(
        () => settleQuiet('READY'),
        () => settleQuiet('ERROR'),
      )
    })
  }

  function settleQuiet(sdkSaid: Reported) {
    quiet--
    if (quiet > 0 || !client) return
    reported = sdkSaid
    tracker.reset()
    lastStatus = JSON.stringify(client.getStatus())
    lastStats = JSON.stringify(client.getEventStats())
    syncStatus()
  }

  /** Resolves when the client holds values for its context, or `settled` settles, whichever is first. */
  function valuesOrSettled(c: FlagClient, settled: Promise<unknown>): Promise<void> {
    if (c.getStatus().state !== 'loading') return Promise.resolve()
    return new Promise<void>((resolve) => {
      let stop = noop
      const done = () => {
        stop()
        resolve()
      }
      stop = c.subscribe(() => {
        if (c.getStatus().state !== 'loading') done()
      })
      settled.then(done, done)
    })
  }

  /** The error to reject with when the server refused, or undefined. */
  function refusal(c: FlagClient): Error | undefined {
    const status = c.getStatus()
    if (status.state !== 'error' || !status.error) return undefined
    if (status.error.code === 'INVALID_CONTEXT') return new InvalidContextError(status.error.message)
    if (status.error.code === 'UNAUTHORIZED') return new GeneralError(status.error.message)
    return undefined
  }

  async function doInitialize(context: OpenFeatureContext | undefined): Promise<void> {
    const wanted = toHoldfastContext(context)
    if (!wanted && context && !isEmptyContext(context) && !client)
      throw new TargetingKeyMissingError('[holdfast] the OpenFeature context has no targetingKey')
    if (!client) {
      if (!wanted) throw new TargetingKeyMissingError('[holdfast] no targetingKey: give the provider a `context` or set an OpenFeature context with a targetingKey')
      client = makeClient(wanted)
    }
    const c = client
    unsubscribe ??= c.subscribe(onClientChange)
    checkForeign()
    // The OpenFeature context, when it names a user, is the truth; before start() this only
    // changes whom the first request is for.
    const switched = wanted ? c.setContext(wanted) : Promise.resolve(c.getStatus())
    const started = c.start()
    await valuesOrSettled(c, Promise.all([switched, started]))
    if (c.getStatus().state === 'error' && !c.snapshot().flags.length) {
      const refused = refusal(c)
      if (refused) throw refused
    }
  }

  return {
    client: () => client,

    initialize(context?: OpenFeatureContext): Promise<void> {
      contextMissing = false
      quiet++ // before any work: the client may notify synchronously
      const promise = doInitialize(context)
      afterSdk(promise)
      return promise
    },

    onContextChange(_old: OpenFeatureContext, next: OpenFeatureContext): Promise<void> {
      quiet++ // before any work: setContext notifies synchronously
      const promise = (async () => {
        const wanted = toHoldfastContext(next)
        if (!wanted) {
          // No user to fetch for, and the previous user's values are not this one's.
          contextMissing = true
          throw new TargetingKeyMissingError('[holdfast] the OpenFeature context has no targetingKey; evaluations return defaults until one is set')
        }
        contextMissing = false
        if (!client) return
        const c = client
        const settled = c.setContext(wanted)
        await valuesOrSettled(c, settled)
        const refused = refusal(c)
        if (refused) throw refused
      })()
      afterSdk(promise)
      return promise
    },

    async close(): Promise<void> {
      unsubscribe?.()
      unsubscribe = undefined
      reported = 'NOT_READY'
      const c = client
      if (c && !given) {
        // A new initialize() (the provider set again) makes a fresh client from the options.
        client = undefined
        await c.close()
      }
    },

    resolve<T>(key: string, defaultValue: T): ResolutionDetails<T> {
      try {
        if (contextMissing)
          return { value: defaultValue, reason: 'ERROR', errorCode: ErrorCode.TARGETING_KEY_MISSING, errorMessage: 'the OpenFeature context has no targetingKey' }
        if (!client) return { value: defaultValue, reason: 'ERROR', errorCode: ErrorCode.PROVIDER_NOT_READY, errorMessage: 'the provider is not initialized' }
        if (foreign) {
          const status = client.getStatus()
          return { value: defaultValue, reason: 'ERROR', errorCode: statusErrorCode(status), errorMessage: `no values for this context: ${status.error?.message ?? 'the latest attempt failed'}` }
        }
        const details: Details<T> = client.getDetails(key, defaultValue)
        // A held flag whose value is the default may be a flag the server sent without a value.
        const valueless =
          details.source !== 'default' && details.errorCode === undefined && details.value === defaultValue && client.getDetails(key, null, { exposure: false }).value === null
        return toResolution(details, valueless)
      } catch (error) {
        logger.error(`[holdfast] evaluating "${key}" failed unexpectedly`, error)
        return { value: defaultValue, reason: 'ERROR', errorCode: ErrorCode.GENERAL, errorMessage: String(error) }
      }
    },

    track(name: string, details: TrackingEventDetails) {
      try {
        if (!client) {
          logger.warn(`[holdfast] track("${name}") before initialize: ignored`)
          return
        }
        client.logEvent(name, toEventOptions(details, logger))
      } catch (error) {
        logger.error(`[holdfast] track("${name}") failed unexpectedly`, error)
      }
    },
  }
}

function statusErrorCode(status: Status): ErrorCode {
  const code = status.error?.code
  if (code === 'INVALID_CONTEXT') return ErrorCode.INVALID_CONTEXT
  if (code === undefined) return ErrorCode.GENERAL
  return toErrorCode(code)
}
