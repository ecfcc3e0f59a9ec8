// The provider's behaviour behind HoldfastWebProvider: which client, when the SDK owns the status
// (quiet) and when the provider speaks, evaluations, context changes, track(). See provider.ts for
// who emits what when.
import { ErrorCode, GeneralError, ProviderEvents, TargetingKeyMissingError, type OpenFeatureEventEmitter } from '@openfeature/web-sdk'
import type { EvaluationContext as OpenFeatureContext, ResolutionDetails, TrackingEventDetails } from '@openfeature/web-sdk'
import { createClient, createLogger, type ClientOptions, type FlagClient, type Logger } from '@holdfast/core'
import { createChangeTracker } from './changeTracker'
import { toHoldfastContext } from './context'
import { evaluate, type EvaluatedType } from './evaluation'
import { toEventOptions } from './eventDetails'
import type { HoldfastClientProviderOptions, HoldfastProviderOptions } from './provider'
import { refusal, valuesOrSettled } from './readiness'
import { createStatusEvents, type Reported } from './statusEvents'

/** The provider's state and behaviour; `HoldfastWebProvider` is a thin class over it. */
export function createProviderCore(options: HoldfastProviderOptions, events: OpenFeatureEventEmitter) {
  const given = 'client' in options ? options.client : undefined
  // Wrapped as core wraps it (default console): a throwing app logger is swallowed, never thrown
  // from the catch that logs a failure (track, an evaluation) or out of an event's emission.
  const logger: Logger = createLogger(options.logger)
  const initialContext = given ? undefined : (options as HoldfastClientProviderOptions).context
  // With a context the client exists at once, so a `bootstrap` is applied synchronously here.
  let client: FlagClient | undefined = given ?? (initialContext ? makeClient(initialContext) : undefined)
  let unsubscribe: (() => void) | undefined
  const statusEvents = createStatusEvents(events, logger)
  /** > 0 while the SDK owns the status (initializing, reconciling a context): the provider stays quiet. */
  let quiet = 0
  /** Counts the switches handed to the SDK (initialize, context changes); whether the latest was a context change's READY. */
  let ops = 0
  /** `ops` at `onClose`: an `initialize` or context change still running then ends without a word. */
  let closedAt = 0
  let latestChange: boolean | undefined
  /** Set while the current OpenFeature context has no targetingKey: nothing is served as anyone's. */
  let contextMissing = false
  /**
   * The targetingKey of the OpenFeature context the provider was last given (by initialize or a
   * context change), once one was. A domain with no provider of its own reads this one with its
   * own context, which reaches no onContextChange (spec 3.2.4.2): an evaluation or a track() whose
   * context names another targetingKey (or none) is not for the user whose values are held.
   */
  let told: [unknown] | undefined
  /**
   * The targetingKey the provider last put its client on. A client passed in may be switched by
   * someone else (a second provider over it, a `<FlagProvider context>`, the app's setContext):
   * its values are then another user's, and neither served nor tracked as this provider's user.
   * Undefined when the OpenFeature context named no user and a client passed in was adopted as is:
   * the app names its user through that client (a `<FlagProvider context>`), and the provider
   * follows it (kept, it served the defaults for the app's next user for good).
   */
  let user: unknown
  const foreignContext = (context?: OpenFeatureContext) =>
    (told && context && context.targetingKey !== told[0]) || (client && user !== undefined && client.getContext().targetingKey !== user)
  /**
   * Set when the latest attempt for the current context failed and what the client holds is not
   * this context's (a switch whose first attempt failed with nothing cached): evaluations return
   * the caller's defaults rather than another user's values. CONTRACT §5 has the client drop
   * those values itself; this guard keeps the promise with a client that does not.
   */
  let foreign = false
  /** The latest switch's settling (initialize's or a context change's): what `initialize` waits for. */
  let latest: Promise<unknown> | undefined
  let lastStatus = ''
  let lastStats = ''
  const tracker = createChangeTracker(() => client)
  /**
   * The options' `context` (the anonymous user) for a context that names no user (no targetingKey,
   * or an empty one), with that context's attributes (a locale chosen before anyone signs in) over
   * its own; a key Holdfast cannot send (a number: `user.id`) names a user, refused rather than
   * served as the anonymous visitor. Undefined without the option.
   */
  const anonymous = (context?: OpenFeatureContext) =>
    (context?.targetingKey ?? '') === '' && initialContext
      ? toHoldfastContext({ ...initialContext, ...context, targetingKey: initialContext.targetingKey } as OpenFeatureContext)
      : undefined
  /** A logout (an OpenFeature context naming no user) came: an answer awaited is no one's now. */
  const left = () => contextMissing
  const noUser = () => new TargetingKeyMissingError('[holdfast] the OpenFeature context has no targetingKey; evaluations return defaults until one is set')

  function makeClient(context: ClientOptions['context']): FlagClient {
    return given ?? createClient({ ...(options as HoldfastClientProviderOptions), context })
  }

  function syncStatus() {
    if (client) statusEvents.sync(client.getStatus(), contextMissing)
  }

  let foreignFor = ''
  function checkForeign(status = client ? JSON.stringify(client.getStatus()) : '') {
    // Whose values are held changes only with an attempt or a switch, and both change the status:
    // snapshot() (a copy of every held flag) is read once per status, and only in the error state.
    if (status == foreignFor) return
    foreignFor = status
    foreign = !!client && client.getStatus().state == 'error' && !client.snapshot().flags.length
  }

  function onClientChange() {
    if (!client) return
    const status = JSON.stringify(client.getStatus())
    checkForeign(status)
    if (quiet > 0) return
    // Event counters change with every logged event; they say nothing about flags. Skip the
    // walk over the flags when only they moved.
    const stats = JSON.stringify(client.getEventStats())
    const onlyStats = status == lastStatus && stats != lastStats
    lastStatus = status
    lastStats = stats
    syncStatus()
    // Nor while no user is named (a logout): every evaluation is refused, whatever the client
    // takes in meanwhile (the answer to a request out at the logout); a login resets the baseline.
    // Nor while a switch's answer is out (the app's own setContext on a client passed in): its
    // stand-ins and then its answer are one switch, one event, once the attempt ends.
    if (onlyStats || contextMissing || client.getStatus().state == 'loading') return
    const flagsChanged = tracker.changed()
    if (flagsChanged.length > 0) statusEvents.emit(ProviderEvents.ConfigurationChanged, { flagsChanged })
  }

  /** Runs after the SDK's own handling of `promise` (its READY, CONTEXT_CHANGED or ERROR). */
  function afterSdk(promise: Promise<void>, change?: boolean) {
    // The SDK chains its handler on `promise` synchronously after we return it; a handler chained
    // one microtask later runs after it. The caller has counted itself in `quiet` already.
    // A context change's: a task later, since a MultiProvider around this one resolves its own
    // change (and the SDK says READY for it) microtasks after ours; said before, an ERROR of ours
    // was overwritten by that READY. The app read its flags at the SDK's CONTEXT_CHANGED, so the
    // baseline is taken then, and what changed in that task is reported at the settle. (Before, the
    // baseline was taken a task later: such a change was never reported, the app kept the old value.)
    const op = ++ops
    queueMicrotask(() => {
      void promise.then(
        () => (change ? (tracker.reset(), setTimeout(settleQuiet, 0, 'READY', op, change)) : settleQuiet('READY', op)),
        () => settleQuiet('ERROR', op),
      )
    })
  }

  function settleQuiet(sdkSaid: Reported, op: number, change?: boolean) {
    // Closed meanwhile (the provider replaced, OpenFeature.close()): the SDK no longer listens, and
    // a client passed in lives on; its first attempt ending must not make this provider speak.
    if (op <= closedAt) return
    // What the SDK said last is the latest switch's word: an earlier one settling after it (a
    // context change's READY, a task late, after a logout's ERROR) is not. (Before, that READY was
    // recorded as the SDK's belief, and the provider said the logout's ERROR a second time.)
    // Recorded now: nothing syncs while quiet.
    if (op == ops) statusEvents.set(sdkSaid, (latestChange = change))
    if (--quiet > 0 || !client) return
    // A context change's READY: the baseline was taken when the SDK spoke (afterSdk).
    if (!latestChange) tracker.reset()
    // As a client change (its status unseen): the status synced, and what changed since the baseline said.
    lastStatus = ''
    onClientChange()
  }

  async function doInitialize(context: OpenFeatureContext | undefined): Promise<void> {
    told = [context?.targetingKey]
    const named = toHoldfastContext(context)
    // Set again after onClose, a provider made with a `context` starts from it once more, for any
    // context that names no user (as at start, where the client exists already), with that
    // context's attributes. A client passed in is adopted as is.
    const wanted = named ?? anonymous(context)
    if (!wanted && !given) {
      // Before start(): the next context change starts the client (`latest` unset). Refused as
      // a logout is, client or not: evaluations say TARGETING_KEY_MISSING as the SDK's ERROR does.
      contextMissing = true
      throw new TargetingKeyMissingError('[holdfast] no targetingKey: give the provider a `context` or set an OpenFeature context with a targetingKey')
    }
    const c = (client ??= makeClient(wanted!))
    // Only a user the OpenFeature context names: the anonymous one's client the app may switch itself (74b7674).
    user = named?.targetingKey
    unsubscribe ??= c.subscribe(onClientChange)
    foreignFor = ''
    checkForeign()
    // The OpenFeature context, when it names a user, is the truth; before start() this only
    // changes whom the first request is for.
    // A context change while this waits (the app sets its user as the page starts) supersedes the
    // switch: its attempt, not this one's, ends `loading`, so this waits for the latest. (Before,
    // this read as a closed client: PROVIDER_ERROR "the client is closed", no READY ever.)
    let settled
    latest = Promise.all([wanted && c.setContext(wanted), c.start()])
    while (settled != latest) await valuesOrSettled(c, (settled = latest), left)
    // A logout came meanwhile: the start is given up, refused as the logout was. (Before, it waited
    // for the answer for the user who left, then said READY for them, or "the client is closed".)
    if (contextMissing) throw noUser()
    // Still `loading` once its first attempt settled (paused), or closed before any values came
    // (core says so as NETWORK "client closed"): a client passed in that fetches nothing, ever.
    // READY then would serve the defaults for good, unexplained.
    const status = c.getStatus()
    if (status.state == 'loading' || status.error?.message == 'client closed') throw new GeneralError('[holdfast] the client is closed')
    if (status.state == 'error' && !c.snapshot().flags.length) {
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
        // First, synchronously; inside the promise, so a context that throws when read rejects.
        told = [next?.targetingKey]
        // A context without a user (an emptied one, OpenFeature.clearContext() on logout, or one
        // that keeps attributes such as a locale) is one the page may have started with: the
        // options' `context` (an anonymous user, with this context's attributes) serves it, as in initialize. (Before, only an
        // empty one did; one with attributes was the anonymous user at start, PROVIDER_ERROR here.)
        const wanted = toHoldfastContext(next) ?? anonymous(next)
        if (!wanted) {
          // No user to fetch for, and the previous user's values are not this one's: nothing is
          // asked for them either (their queued events still go out).
          contextMissing = true
          client?.pause()
          throw noUser()
        }
        contextMissing = false
        // No client yet, or not started: the first context named no user and initialize refused it.
        if (!client || !latest) return doInitialize(next)
        const c = client
        user = wanted.targetingKey
        await valuesOrSettled(c, (latest = c.setContext(wanted)), left)
        // A logout came meanwhile: this switch is given up, refused as that one was. (The SDK says
        // a change's ERROR only once none is pending: before, it waited for this answer, said
        // nothing till then, then CONTEXT_CHANGED for a user no longer there.)
        if (contextMissing) throw noUser()
        const refused = refusal(c)
        if (refused) throw refused
      })()
      afterSdk(promise, true)
      return promise
    },

    async close(): Promise<void> {
      closedAt = ops
      quiet = 0
      unsubscribe?.()
      unsubscribe = undefined
      // What the SDK believes is set again when the next initialize settles; nothing syncs before.
      const c = client
      if (c && !given) {
        // A new initialize() (the provider set again) makes a fresh client from the options.
        client = undefined
        await c.close()
        // The SDK (1.10) keeps its status as it was (READY) after OpenFeature.close(), and this
        // provider gives only defaults now: said so until an initialize (set again) makes a client.
        statusEvents.emit(ProviderEvents.Error, { errorCode: ErrorCode.PROVIDER_NOT_READY, message: 'the provider is not initialized' })
      }
    },

    /** `type`: what the evaluation asks for (`object`: an object or an array) whatever the default. */
    resolve: <T>(...asked: [key: string, defaultValue: T, type: EvaluatedType, context?: OpenFeatureContext]): ResolutionDetails<T> =>
      evaluate(client, contextMissing, foreignContext, foreign, tracker, logger, ...asked),

    track(name: string, details: TrackingEventDetails, context?: OpenFeatureContext) {
      try {
        // No user (before initialize, or a context without targetingKey), or the context of a
        // domain that reads this provider for another user: the event is not the held user's.
        if (!client || contextMissing || foreignContext(context)) {
          logger.warn(`[holdfast] track("${name}") with no targetingKey of the provider's: ignored`)
          return
        }
        client.logEvent(name, toEventOptions(details, logger))
      } catch (error) {
        logger.error(`[holdfast] track("${name}") failed unexpectedly`, error)
      }
    },
  }
}
