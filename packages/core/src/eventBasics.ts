// What the event pipeline (eventQueue.ts, loaded on demand) and its stand-in (lazyEventQueue.ts)
// must agree on: how an event is stored — one entry per event under
// `holdfast:event:<time>:<seq>:<id>`, so a key listing sorted as strings is oldest first — how
// soon it is written, and how the numeric `events` options are read.
import type { Clock, HoldfastEvent } from './types'

export const EVENT_PREFIX = 'holdfast:event:'

/** Events are written within this many ms of being logged (CONTRACT §6 promises 100). */
export const WRITE_DELAY_MS = 50

/** An event the stand-in took while the pipeline loaded: `written` once it is in storage. */
export interface HeldEvent {
  key: string
  event: HoldfastEvent
  written: boolean
}

/** Orders events logged in the same millisecond on this page. */
let sequence = 0

export function eventKey(event: HoldfastEvent): string {
  return `${EVENT_PREFIX}${pad(event.time, 15)}:${pad(sequence++, 9)}:${event.id}`
}

function pad(n: number, width: number): string {
  return String(Math.max(0, Math.floor(Number.isFinite(n) ? n : 0))).padStart(width, '0')
}

/** `value` when it is a positive finite number, else `fallback` (the option's default). */
export function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback
}

/** The default of `events.maxQueued`. */
export const MAX_QUEUED = 10_000

/** Waits for `promise`, or `ms` on `clock`, whichever comes first; undefined when time ran out. */
export async function within<T>(clock: Clock, ms: number, promise: Promise<T>): Promise<T | undefined> {
  let timer: unknown
  const late = new Promise<undefined>((resolve) => (timer = clock.setTimeout(() => resolve(undefined), ms)))
  try {
    return await Promise.race([promise, late])
  } finally {
    clock.clearTimeout(timer)
  }
}
