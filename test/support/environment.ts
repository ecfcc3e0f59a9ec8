// A browser environment the test drives, passed as the client's `environment` instead of patching
// globals: the online state and visibility it reports, and the page events it fires on demand.
import type { Environment, EnvironmentHandlers } from '@holdfast/core'

type PageEvent = 'online' | 'offline' | 'focus' | 'hidden' | 'freeze' | 'resume'

const handlerOf: Record<PageEvent, keyof EnvironmentHandlers | undefined> = {
  online: 'onOnline',
  offline: undefined, // only the state: browsers' `offline` is read, never awaited
  focus: 'onVisible',
  hidden: 'onHidden',
  freeze: 'onFreeze',
  resume: 'onResume',
}

export function fakeEnvironment() {
  const handlers = new Set<EnvironmentHandlers>()
  const env = {
    isOnline: true,
    isVisible: true,
    online: () => env.isOnline,
    visible: () => env.isVisible,
    listen(h: EnvironmentHandlers) {
      handlers.add(h)
      return () => void handlers.delete(h)
    },
    /** Sets the state the event implies, then tells every listener (a copy: one may unsubscribe). */
    fire(event: PageEvent) {
      if (event === 'online' || event === 'offline') env.isOnline = event === 'online'
      if (event === 'focus' || event === 'hidden') env.isVisible = event === 'focus'
      const name = handlerOf[event]
      if (name) for (const h of [...handlers]) h[name]?.()
    },
    /** How many listeners are attached (none after close()). */
    listeners: () => handlers.size,
  }
  return env satisfies Environment
}
