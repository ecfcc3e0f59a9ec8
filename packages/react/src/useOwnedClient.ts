// The lifecycle of a client the provider creates itself. It must be there on the very first
// render (server, hydration, client) so the bootstrap is on screen at once; it must be started
// only after mount, and closed when the provider goes away for good but not when React only
// pretends to unmount it:
//
//   StrictMode (dev):   mount effects → cleanup → mount effects again, in one synchronous pass
//   Fast Refresh:       the same, for an edited component
//   <Activity hidden>:  cleanup now → mount effects again whenever it is shown (maybe never)
//
// So the cleanup only *schedules* the close on a microtask, and an effect that runs again before
// it cancels it: StrictMode and Fast Refresh keep their one client, a real unmount closes it one
// microtask later (timers and window/document listeners gone). When the close did happen and the
// provider comes back (a hidden Activity shown again), close() is final in core, so the effect
// replaces the client with a new one seeded from the old one's values, and re-renders.
//
// Creation happens during render, in a ref, because `createClient` does no I/O, starts no timers
// and attaches no listeners: on the server, or for a render React throws away, an
// unstarted client is just an object. React 19 keeps the ref across StrictMode's double render,
// so only one client is ever built; React 18 re-runs the first render from scratch, so it builds
// a second one and discards the first, never started, to the garbage collector.
import { useEffect, useReducer, useRef } from 'react'
import { createClient, type ClientOptions, type FlagClient } from '@holdfast/core'

interface Owned {
  readonly client: FlagClient
  /** The `headers` object the client was given, when the prop is one: refilled with the latest prop. */
  readonly headers?: Record<string, string>
  closeScheduled: boolean
  closed: boolean
}

/** The provider's own client when `options` are given; `undefined` when the app passed one in. */
export function useOwnedClient(options: ClientOptions | undefined): FlagClient | undefined {
  const ref = useRef<Owned | null>(null)
  const latestOptions = useRef(options)
  const [, replaced] = useReducer((n: number) => n + 1, 0)
  if (options && ref.current === null) ref.current = create(options, latestOptions)
  const owned = options ? ref.current : null

  useEffect(() => {
    latestOptions.current = options
    const held = ref.current?.headers
    const headers = options?.headers
    // A prop that cannot be read (a throwing getter) must not throw into the app: the last good
    // one stays, as a function's throw fails only its request. A prop gone (`undefined` on logout)
    // empties it, and a function given later fills it with its answer after each render: before,
    // both went on sending the first object, the logged-out user's token on the guest's requests.
    if (held)
      try {
        const next = typeof headers == 'function' ? headers() : { ...headers }
        for (const name in held) delete held[name]
        Object.assign(held, next)
      } catch {}
  })

  useEffect(() => {
    if (!owned) return
    if (owned.closed) {
      const options = latestOptions.current
      if (!options) return
      ref.current = create(seeded(options, owned.client), latestOptions)
      replaced()
      return
    }
    owned.closeScheduled = false
    return () => {
      owned.closeScheduled = true
      queueMicrotask(() => {
        if (!owned.closeScheduled || owned.closed) return
        owned.closed = true
        void owned.client.close()
      })
    }
  }, [owned])

  return owned?.client
}

/**
 * `createClient`, with a programmer error naming `<FlagProvider>`, which is what the app wrote.
 * `headers` is read from the latest props on every request: a token passed in after login or a
 * refresh is sent from then on (flags, events, a reconnecting stream), by the same client.
 * An object stays an object for core, which keys the cache (and the tabs sharing a stream) by
 * static headers' value, an SDK key: one object the client keeps, refilled with the latest prop
 * by value (a new literal every render is no new client). Handed over as a function, every key
 * on the origin shared one cache entry. A provider created with a function calls the latest one.
 */
function create(options: ClientOptions, latest: { current: ClientOptions | undefined }): Owned {
  try {
    let headers: Record<string, string> | undefined
    try {
      if (typeof options.headers == 'object') headers = { ...options.headers }
    } catch {}
    const client = createClient({
      ...options,
      headers:
        headers ??
        (() => {
          const headers = latest.current?.headers
          return typeof headers == 'function' ? headers() : { ...headers }
        }),
    })
    return { client, headers, closeScheduled: false, closed: false }
  } catch (error) {
    if (error instanceof TypeError && error.message.includes('createClient'))
      throw new TypeError(error.message.replace('createClient', '<FlagProvider>'))
    throw error
  }
}

/**
 * Options for a replacement client: the closed one's values as bootstrap, when they are this user's.
 * A `context` prop that lost its targetingKey (a logout) or went away stands in on a provider that
 * stays shown, but createClient refuses it: the replacement starts as the closed client's user, and
 * the switch effect then pauses it (or, with no prop, leaves it), as it did the closed one.
 */
function seeded(options: ClientOptions, previous: FlagClient): ClientOptions {
  const snapshot = previous.snapshot()
  const context = typeof options.context?.targetingKey == 'string' ? options.context : snapshot.context
  const usable = snapshot.flags.length > 0 && snapshot.context.targetingKey === context.targetingKey
  return usable ? { ...options, context, bootstrap: snapshot } : { ...options, context }
}
