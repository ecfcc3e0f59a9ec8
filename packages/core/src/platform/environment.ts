// The browser signals the client reacts to — focus, visibility, online/offline, page hide — as one
// injectable object, so tests drive them with a fake instead of patching globals. Listeners are
// attached by `start()` and removed by `close()`; on a server (no `window`/`document`) nothing is.
import type { Environment, EnvironmentHandlers } from '../types'

/**
 * The browser's environment, the default of `ClientOptions.environment`: `online()` reads
 * `navigator.onLine` (unknown counts as online), `visible()` reads `document.visibilityState`
 * (unknown counts as visible), and `listen` attaches `visibilitychange`, `focus`, `pagehide`,
 * `online`, `freeze` and `resume` listeners. Creating it touches nothing; only `listen` does.
 */
export const browserEnvironment: Environment = {
  online: () => typeof navigator === 'undefined' || navigator.onLine !== false,
  visible: () => typeof document === 'undefined' || document.visibilityState !== 'hidden',
  listen(handlers: EnvironmentHandlers): () => void {
    const removers: (() => void)[] = []
    const win = typeof window !== 'undefined' ? window : undefined
    const doc = typeof document !== 'undefined' ? document : undefined
    const on = (target: EventTarget | undefined, type: string, listener: (() => void) | undefined) => {
      if (!listener || typeof target?.addEventListener !== 'function') return
      target.addEventListener(type, listener)
      removers.push(() => target.removeEventListener(type, listener))
    }
    const { onVisible, onHidden } = handlers
    on(doc, 'visibilitychange', (onVisible || onHidden) && (() => (doc?.visibilityState === 'hidden' ? onHidden?.() : onVisible?.())))
    on(win, 'focus', onVisible)
    // `pagehide` fires where `visibilitychange` may not (some mobile browsers on unload).
    on(win, 'pagehide', onHidden)
    on(win, 'online', handlers.onOnline)
    on(doc, 'freeze', handlers.onFreeze)
    on(doc, 'resume', handlers.onResume)
    return () => {
      for (const remove of removers.splice(0)) remove()
    }
  },
}
