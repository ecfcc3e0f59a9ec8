/**
 * A simulated outage of the flags endpoint, for demos and client tests:
 * - `none`: normal answers
 * - `503`: 503 Service Unavailable (with `Retry-After` when `retryAfter` is set)
 * - `empty`: 200 `{}` (a broken proxy or CDN)
 * - `empty-flags`: 200 `{"flags":[]}` (a backend that lost its data)
 * - `html`: 200 `text/html` (a captive portal)
 * - `hang`: no answer at all until the mode changes or the server closes
 */
export type OutageMode = 'none' | '503' | 'empty' | 'empty-flags' | 'html' | 'hang'

/** All outage modes, in the order the demo shows them. */
export const OUTAGE_MODES: readonly OutageMode[] = ['none', '503', 'empty', 'empty-flags', 'html', 'hang']

/** The current outage. Default `{ mode: 'none', events: false }`. */
export interface OutageState {
  /** What the flags endpoints do. Default `none`. */
  mode: OutageMode
  /** When true the events endpoint answers 503 as well. Default false. */
  events: boolean
  /** `Retry-After` seconds sent with the simulated 503s; absent means no header. */
  retryAfter?: number
}

/** Reads and changes the simulated outage; requests held by `hang` wait on {@link OutageControl.changed}. */
export interface OutageControl {
  get(): OutageState
  /** Merges a change into the state and wakes every held request. Returns the new state. */
  set(change: Partial<OutageState>): OutageState
  /** Resolves at the next {@link OutageControl.set} or {@link OutageControl.release}. */
  changed(): Promise<void>
  /** Wakes every held request for good (server shutdown); later `changed()` calls resolve at once. */
  release(): void
}

/** Creates an {@link OutageControl} starting at `{ mode: 'none', events: false }`. */
export function createOutageControl(): OutageControl {
  let state: OutageState = { mode: 'none', events: false }
  let wake: Array<() => void> = []
  let released = false
  const wakeAll = () => {
    const waiting = wake
    wake = []
    for (const resolve of waiting) resolve()
  }
  return {
    get: () => ({ ...state }),
    set(change) {
      state = { ...state, ...change }
      if (state.retryAfter === undefined) delete state.retryAfter
      wakeAll()
      return { ...state }
    },
    changed: () => (released ? Promise.resolve() : new Promise<void>((resolve) => wake.push(resolve))),
    release() {
      released = true
      wakeAll()
    },
  }
}

/**
 * Validates a `POST /demo/outage` body: `{ mode?, events?, retryAfter? }`, where `retryAfter: null`
 * removes the header. Returns the change to apply or a message saying what is wrong.
 */
export function readOutageChange(body: unknown): { ok: true; change: Partial<OutageState> } | { ok: false; error: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, error: 'expected a JSON object' }
  const { mode, events, retryAfter } = body as Record<string, unknown>
  const change: Partial<OutageState> = {}
  if (mode !== undefined) {
    if (!OUTAGE_MODES.includes(mode as OutageMode)) return { ok: false, error: `mode must be one of ${OUTAGE_MODES.join(', ')}` }
    change.mode = mode as OutageMode
  }
  if (events !== undefined) {
    if (typeof events !== 'boolean') return { ok: false, error: 'events must be a boolean' }
    change.events = events
  }
  if (retryAfter !== undefined) {
    if (retryAfter !== null && !(typeof retryAfter === 'number' && Number.isInteger(retryAfter) && retryAfter >= 0)) {
      return { ok: false, error: 'retryAfter must be a whole number of seconds, or null' }
    }
    change.retryAfter = retryAfter ?? undefined
  }
  return { ok: true, change }
}
