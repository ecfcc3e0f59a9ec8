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
// PROVIDER_CONFIGURATION_CHANGED naming the flags whose details changed. The behaviour is in
// providerCore.ts, an evaluation in evaluation.ts, the status-to-event mapping in statusEvents.ts,
// the resolution in resolution.ts.
import { OpenFeatureEventEmitter } from '@openfeature/web-sdk'
import type { EvaluationContext as OpenFeatureContext, JsonValue, Provider, ProviderMetadata, ResolutionDetails, TrackingEventDetails } from '@openfeature/web-sdk'
import type { ClientOptions, FlagClient, Logger } from '@holdfast/core'
import { createProviderCore } from './providerCore'

/**
 * Options of {@link HoldfastWebProvider} when it creates its own client: Holdfast's
 * `ClientOptions`, with `context` optional. Without one, the client is created in `initialize`
 * from the OpenFeature context (which then needs a `targetingKey`).
 */
export type HoldfastClientProviderOptions = Omit<ClientOptions, 'context'> & {
  /**
   * The user to create the client for at once, and the one an OpenFeature context without a
   * `targetingKey` (or an empty one) is served as (an anonymous user: at start, after a logout,
   * when set again), with that context's attributes (a locale) over its own. A `targetingKey` that
   * is not a string (a number) names a user: refused.
   * Default: none (the client is created in `initialize` from the OpenFeature context, which wins
   * when it has a `targetingKey`; one without is then refused, TARGETING_KEY_MISSING).
   */
  context?: ClientOptions['context']
}

/**
 * What `new HoldfastWebProvider(…)` takes: client options (the provider creates, starts and, on
 * `onClose`, closes the client), or `{ client }`, a client the app made and keeps owning (the
 * provider starts it if needed and never closes it). `logger` (default `console`) takes the
 * provider's own `[holdfast]` warnings, e.g. fields `track()` left out.
 */
export type HoldfastProviderOptions =
  | HoldfastClientProviderOptions
  | {
      /** A client the app made and keeps owning: the provider starts it if needed and never closes it. */
      client: FlagClient
      /** Takes the provider's own `[holdfast]` warnings (e.g. fields `track()` left out). Default `console`. */
      logger?: Logger
    }

/**
 * An OpenFeature web provider (`@openfeature/web-sdk`, and so `@openfeature/react-sdk`) backed by
 * a Holdfast client: its last known good values, its IndexedDB cache and its persisted event
 * queue. Evaluations are synchronous lookups in Holdfast's store. `initialize` resolves as soon as
 * values are held (cache or bootstrap) or the first attempt settled, and never rejects on a
 * network failure, so `await OpenFeature.setProviderAndWait(provider)` cannot throw into the app
 * because the flag server is down. A provider instance serves one OpenFeature domain at a time.
 */
export class HoldfastWebProvider implements Provider {
  /** The provider's name for the OpenFeature SDK: `{ name: 'holdfast' }`. */
  readonly metadata: ProviderMetadata = { name: 'holdfast' }
  /** Browser (static context) paradigm. */
  readonly runsOn = 'client' as const
  /**
   * One domain per instance: the SDK refuses a second binding (setProvider throws). A client holds
   * one user; a second domain's context change would switch the first domain's user too.
   */
  readonly domainScoped = true
  /** Where the provider's events go; the OpenFeature SDK listens here. */
  readonly events = new OpenFeatureEventEmitter()

  private readonly impl: ReturnType<typeof createProviderCore>

  /** See {@link HoldfastProviderOptions}. Creates no client yet unless a `context` is given; nothing is fetched until `initialize`. */
  constructor(options: HoldfastProviderOptions) {
    this.impl = createProviderCore(options, this.events)
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
  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context?: OpenFeatureContext): ResolutionDetails<boolean> {
    return this.impl.resolve(flagKey, defaultValue, 'boolean', context)
  }

  /** A string flag from Holdfast's store; never throws. */
  resolveStringEvaluation(flagKey: string, defaultValue: string, context?: OpenFeatureContext): ResolutionDetails<string> {
    return this.impl.resolve(flagKey, defaultValue, 'string', context)
  }

  /** A number flag from Holdfast's store; never throws. */
  resolveNumberEvaluation(flagKey: string, defaultValue: number, context?: OpenFeatureContext): ResolutionDetails<number> {
    return this.impl.resolve(flagKey, defaultValue, 'number', context)
  }

  /** An object (or array) flag from Holdfast's store; never throws. */
  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T, context?: OpenFeatureContext): ResolutionDetails<T> {
    return this.impl.resolve(flagKey, defaultValue, 'object', context)
  }

  /** Logs a custom event on Holdfast's persisted queue: `details.value` (a finite number) and flat metadata. */
  track(trackingEventName: string, context: OpenFeatureContext, trackingEventDetails: TrackingEventDetails): void {
    this.impl.track(trackingEventName, trackingEventDetails, context)
  }
}
