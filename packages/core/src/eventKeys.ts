// How an event is stored: one entry per event under `holdfast:event:<time>:<seq>:<id>`, so a key
// listing sorted as strings is oldest first. Shared by the store (eventStore.ts) and by the
// stand-in that writes events while the pipeline is still loading (lazyEventQueue.ts).
import type { HoldfastEvent } from './types'

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
