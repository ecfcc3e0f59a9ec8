// The one logger: every message carries the `[holdfast]` prefix, and a logger that throws (a
// broken telemetry hook, a console replaced by something odd) can never break the client.
import type { Logger } from '../types'

const PREFIX = '[holdfast]'

/**
 * Wraps the app's logger (default `console`): adds the `[holdfast]` prefix when a message lacks
 * it, and swallows anything a logger method throws.
 */
export function createLogger(target: Logger | undefined = typeof console !== 'undefined' ? console : undefined): Logger {
  const at =
    (level: 'warn' | 'error' | 'debug') =>
    (message: string, ...args: unknown[]) => {
      try {
        const method = target?.[level]
        if (typeof method !== 'function') return
        const text = typeof message === 'string' && message.startsWith(PREFIX) ? message : `${PREFIX} ${message}`
        method.call(target, text, ...args)
      } catch {
        // The app's logger failed; there is nowhere left to report it, and the client carries on.
      }
    }
  return { warn: at('warn'), error: at('error'), debug: at('debug') }
}
