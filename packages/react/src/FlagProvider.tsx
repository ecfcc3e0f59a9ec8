import { createElement, useContext, useEffect, useLayoutEffect, useSyncExternalStore, type ReactElement, type ReactNode } from 'react'
import { stableStringify, type ClientOptions, type EvaluationContext, type FlagClient } from '@holdfast/core'
import { FlagContext, SwitchingContext } from './FlagContext'
import { useOwnedClient } from './useOwnedClient'

/** Props of `<FlagProvider client={client}>`: the app owns the client. */
export interface FlagProviderClientProps {
  /**
   * A client from `createClient`, owned by the app: the provider starts it after mount
   * (`start()` is idempotent) and never closes it, so it may outlive the provider or be shared.
   * A wrapper of your own must have every `FlagClient` member: hooks call `isExposable` too.
   */
  client: FlagClient
  /**
   * The user. When given and different by value from the client's current context, the provider
   * calls `client.setContext(context)` after commit. Default: the client's own context is kept.
   */
  context?: EvaluationContext
  /** The tree that reads flags. Default: none (the provider renders nothing). */
  children?: ReactNode
}

/**
 * Props of `<FlagProvider url=… context=… bootstrap=…>`: every `createClient` option; the provider
 * creates one client for its life (options other than `context` and `headers` are read once, at
 * creation; give the provider a `key` to start over with new ones), starts it after mount and
 * closes it on unmount. `headers` is read from the latest props on every request: a new token
 * after login or a refresh is sent from then on, and none once it is `undefined` (a 401 already
 * answered is not retried for it: call `refresh()` when the new token should be tried at once).
 * Created with an object, a function given later is called after each render, not per request.
 */
export type FlagProviderOptionsProps = ClientOptions & {
  /** Unset: the provider creates and owns its client (pass `client` for the other form). */
  client?: undefined
  /** The tree that reads flags. Default: none (the provider renders nothing). */
  children?: ReactNode
}

/** Either an app-owned `client`, or the options of one the provider creates. */
export type FlagProviderProps = FlagProviderClientProps | FlagProviderOptionsProps

/**
 * Makes a flag client available to the hooks below it. With `client`, uses that client and never
 * closes it; with `createClient` options (`url`, `context`, `bootstrap`, …), creates exactly one
 * client, even under StrictMode, which renders the bootstrap on the first render (server and
 * client alike, so hydration matches), is started after mount and is closed on unmount. A change
 * of `context` by value (not object identity) switches the user with `setContext` before paint;
 * the render that takes it shows the defaults (`loading`), then the new user's cached values or,
 * with none, the previous values marked stale until the new user's arrive. Nothing here runs on
 * the server but render.
 */
export function FlagProvider(props: FlagProviderProps): ReactElement {
  const { client: given, children, ...options } = props
  const owned = useOwnedClient(given ? undefined : (options as ClientOptions))
  const client = (given ?? owned) as FlagClient

  const context = props.context
  const contextKey = context === undefined ? undefined : keyOf(context)
  useSwitchEffect(() => {
    // A layout effect: before the browser paints and before any passive effect of the children.
    // The render that takes a new user's context (often the first of that user's page) only
    // stands in (below); switched in a passive effect, it would be painted, a flash of defaults.
    // Now the new user's cached values (or the previous ones, marked `loading`) replace it before
    // paint (test/e2e/user-switch.test.ts watches every frame in Chromium).
    // Before the start effect too: a passed-in client that is not started yet switches
    // first and then fetches once, for the right user. Called even when the prop equals the
    // client's context (a no-op in core then): a client someone paused (an OpenFeature logout
    // on a shared client) is resumed by the app logging the same user back in through this prop.
    if (context !== undefined) void client.setContext(context)
    // `contextKey` stands for `context`: a new object with the same content is no change.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, contextKey])

  useEffect(() => {
    void client.start()
  }, [client])

  // The render that takes a new user's prop runs before the switch above, on a client that still
  // holds the previous user's values; it is committed, so its children's layout and passive effects
  // run with what it shows (React flushes the passive ones before the re-render the switch causes):
  //
  //   context={bob}: render ── child effects ── setContext(bob) ── child effects ── re-render
  //                  └─ alice's values, `ready`, for bob's page ─┘
  //
  // So while the prop names another user than the client's, the hooks of this client below show
  // the defaults, `loading`, and expose nothing. Read in render, written nowhere: a render React
  // throws away leaves nothing behind. A store subscription re-renders the provider when the client
  // takes the user (or someone else switches it). Another user means another `targetingKey`: new
  // attributes of the same user keep that user's values (§5).
  // A provider of the same client nested in one that is switching it (a library re-providing
  // `useFlagClient()` to its subtree) passes the stand-in on; one of another client does not.
  const outerClient = useContext(FlagContext)
  const outer = useContext(SwitchingContext) && outerClient === client
  const pending = () => {
    try {
      return !!context && context.targetingKey !== client.getContext().targetingKey
    } catch {
      // A key that cannot be read (a throwing getter, a revoked Proxy) must not throw into render;
      // setContext refuses such a context, so it is never switched to.
      return true
    }
  }
  const switching = useSyncExternalStore(client.subscribe, pending, pending) || outer

  // createElement, not JSX: the bundle then needs no `react/jsx-runtime` import for these elements.
  return createElement(FlagContext.Provider, { value: client }, createElement(SwitchingContext.Provider, { value: switching }, children))
}

// On the server no effect runs, and React 18 warns about a layout effect there. `window`, not
// `document`: React Native has the one and not the other, and its hooks need the early switch too.
const useSwitchEffect = typeof window == 'undefined' ? useEffect : useLayoutEffect

/**
 * The context's identity by value. One that cannot be serialised (a cycle, a BigInt) must not
 * throw into render: every such context has the empty key (no JSON is empty), so a new one on
 * every render is no switch; the first is passed on and the client reports it as
 * `INVALID_CONTEXT` (any other would be refused the same way); a good context switches again.
 */
function keyOf(context: EvaluationContext): string {
  try {
    return stableStringify(context)
  } catch {
    return ''
  }
}
