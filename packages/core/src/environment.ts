// The browser signals the client reacts to. Listeners are attached by `start()` and removed by
// `close()`; on a server (no `window`/`document`) nothing is attached at all.

export interface EnvironmentHandlers {
  /** The page became visible or the window gained focus. */
  onVisible?: () => void
  /** The page is being hidden or unloaded: last chance to send (keepalive). */
  onHidden?: () => void
  /** The browser reports it is back online. */
  onOnline?: () => void
}

/** Whether the browser says it is offline. Unknown (a server, a worker without it) counts as online. */
export function isOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false
}

/** Attaches the handlers; returns the function that removes every one of them. */
export function watchEnvironment(handlers: EnvironmentHandlers): () => void {
  const removers: (() => void)[] = []
  const on = (target: EventTarget | undefined, type: string, listener: () => void) => {
    if (!target || typeof target.addEventListener !== 'function') return
    target.addEventListener(type, listener)
    removers.push(() => target.removeEventListener(type, listener))
  }
  const win = typeof window !== 'undefined' ? window : undefined
  const doc = typeof document !== 'undefined' ? document : undefined
  if (handlers.onVisible || handlers.onHidden) {
    on(doc, 'visibilitychange', () => {
      if (doc?.visibilityState === 'hidden') handlers.onHidden?.()
      else handlers.onVisible?.()
    })
  }
  if (handlers.onVisible) on(win, 'focus', handlers.onVisible)
  // `pagehide` fires where `visibilitychange` may not (some mobile browsers on unload).
  if (handlers.onHidden) on(win, 'pagehide', handlers.onHidden)
  if (handlers.onOnline) on(win, 'online', handlers.onOnline)
  return () => {
    for (const remove of removers.splice(0)) remove()
  }
}
