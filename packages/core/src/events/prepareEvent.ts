// What the queue keeps of an event the app logged: a plain-JSON copy made at once. The copy means
// mutating the metadata after `logEvent` changes nothing; plain JSON means IndexedDB can always
// clone it (a function or a class instance can no longer make the write fail and push the whole
// page onto memory) and the batch it ends up in can always be serialised. An event that cannot
// be serialised (a BigInt, a cycle, a throwing `toJSON` or getter) is refused here, alone.
import type { FlagMetadata, HoldfastEvent, Logger } from '../types'

/**
 * A plain-JSON copy of `event`, its metadata reduced to string, finite number and boolean values
 * (others are left out with a warning) and a `time` that is not finite replaced by `Date.now()`; `undefined` when the event cannot be serialised at all, in
 * which case the caller drops and counts it. Never throws.
 */
export function prepareEvent(event: HoldfastEvent, logger: Logger): HoldfastEvent | undefined {
  try {
    const { metadata } = event
    let copy: FlagMetadata | undefined
    if (metadata !== undefined) {
      copy = {}
      for (const key of Object.keys(Object(metadata))) {
        const value: unknown = metadata[key]
        if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) copy[key] = value
        else logger.warn(`[holdfast] event "${event.name}": metadata "${key}" left out (not a string, finite number or boolean)`)
      }
    }
    // A clock that reads NaN must not make the event unreadable (its time would become null).
    const time = Number.isFinite(event.time) ? event.time : Date.now()
    return JSON.parse(JSON.stringify({ ...event, time, metadata: copy })) as HoldfastEvent
  } catch (error) {
    logger.warn(`[holdfast] dropped the event "${event.name}": it cannot be serialised as JSON`, error)
    return undefined
  }
}
