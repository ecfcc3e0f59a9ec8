// A clock whose timers fire only when the test advances it; `now()` is real time plus the
// advances, so timestamps stay plausible. Lets retry, backoff and polling tests run in
// milliseconds while the HTTP server stays real.
import type { Clock } from '@holdfast/core'

export interface ManualClock extends Clock {
  /** Delays of timers currently pending, in ms from when they were set. */
  pending(): number[]
  /** Moves time forward and fires every timer that falls due, in order. */
  advance(ms: number): void
  /** Fires the next pending timer, whatever its delay; returns its delay or undefined. */
  fireNext(): number | undefined
}

export function createManualClock(): ManualClock {
  let offset = 0
  let seq = 0
  const timers = new Map<number, { at: number; delay: number; callback: () => void }>()
  const now = () => Date.now() + offset
  return {
    now,
    setTimeout(callback, ms) {
      const id = ++seq
      timers.set(id, { at: now() + ms, delay: ms, callback })
      return id
    },
    clearTimeout(handle) {
      timers.delete(handle as number)
    },
    pending: () => [...timers.values()].map((t) => t.delay),
    advance(ms) {
      offset += ms
      const due = [...timers.entries()].filter(([, t]) => t.at <= now()).sort((a, b) => a[1].at - b[1].at)
      for (const [id, t] of due) {
        timers.delete(id)
        t.callback()
      }
    },
    fireNext() {
      const first = [...timers.entries()].sort((a, b) => a[1].at - b[1].at)[0]
      if (!first) return undefined
      timers.delete(first[0])
      offset = Math.max(offset, first[1].at - Date.now())
      first[1].callback()
      return first[1].delay
    },
  }
}

/** A logger that keeps messages for assertions instead of printing them. */
export function createTestLogger() {
  const warnings: string[] = []
  const errors: string[] = []
  return {
    warnings,
    errors,
    warn: (message: string) => void warnings.push(message),
    error: (message: string) => void errors.push(message),
  }
}

let dbCounter = 0
/** A database name no other test uses. */
export function uniqueStorageName(label = 'test'): string {
  return `holdfast-${label}-${process.pid}-${++dbCounter}-${Math.random().toString(36).slice(2, 8)}`
}

/**
 * Runs `call` (start, refresh, setContext: anything that sends one request) against a server that
 * hangs, and lets that request time out by advancing the manual clock past `timeoutMs` once the
 * server has seen it. Request timeouts run on the injected clock like every other timer, so a test
 * that wants one must move time.
 */
export async function throughTimeout<T>(
  clock: ManualClock,
  server: { requests: unknown[]; waitForRequests(count: number, timeoutMs?: number): Promise<void> },
  timeoutMs: number,
  call: () => Promise<T>,
): Promise<T> {
  const count = server.requests.length + 1
  const result = call()
  await server.waitForRequests(count, 10_000)
  clock.advance(timeoutMs)
  return result
}
