// What the queue keeps of an event the app logged: a plain-JSON copy made at once. The copy means
// mutating the metadata after `logEvent` changes nothing; plain JSON means IndexedDB can always
// clone it (a function or a class instance can no longer make the write fail and push the whole
// page onto memory) and the batch it ends up in can always be serialised. An event that cannot
// be serialised (a BigInt, a cycle, a throwing `toJSON` or getter) is refused here, alone.
import type { FlagMetadata, HoldfastEvent, JsonValue, Logger } from '../types'

/**
 * A plain-JSON copy of `event`, its metadata and a custom event's value reduced to string, finite
 * number and boolean values (others are left out with a warning naming the event) and a `time` that is not finite replaced by `Date.now()`; `undefined` when the event cannot be serialised at all, in
 * which case the caller drops and counts it. Never throws.
 */
export function prepareEvent(event: HoldfastEvent, logger: Logger): HoldfastEvent | undefined {
  try {
    // A clock that reads NaN must not make the event unreadable (its time would become null).
    // `+ 0` turns -0 into 0, as JSON would.
    const copy: HoldfastEvent = { ...event, time: Number.isFinite(event.time) ? event.time + 0 : Date.now() }
    const { value, metadata } = event
    if (value !== undefined) {
      // A custom event's value (CONTRACT §3: string | number) is kept as metadata values are:
      // NaN, ±Infinity, a function or an object from untyped code is left out with a warning
      // (before, NaN arrived as null and a function vanished, both silently). An exposure's is a
      // flag value, any JSON: primitives as they are, anything else through JSON and back (this
      // throws for a BigInt, a cycle or a throwing toJSON).
      const plain =
        flat(value) ??
        (event.type != 'custom' ? parse(JSON.stringify(value)) : (logger.warn(`event "${event.name}": value left out (not a string, finite number or boolean)`), undefined))
      if (plain === undefined) delete copy.value
      else copy.value = plain
    }
    if (metadata !== undefined) {
      const kept: FlagMetadata = (copy.metadata = {})
      for (const key of Object.keys(Object(metadata))) {
        // `__proto__` (an own key of a parsed object) cannot be kept: assigning it sets nothing
        // (before, it vanished without a word) and receivers refuse it. Read as null, it is left out
        // with the warning below.
        const v = flat(key == '__proto__' ? null : metadata[key])
        if (v !== undefined) kept[key] = v
        else logger.warn(`event "${event.name}": metadata "${key}" left out (not a string, finite number or boolean)`)
      }
    }
    return copy
  } catch (error) {
    logger.warn(`dropped the event "${event.name}": it cannot be serialised as JSON`, error)
    return undefined
  }
}

/** A string, a finite number (-0 as 0, as JSON has it) or a boolean; undefined for anything else. What an event's metadata values and a custom event's value are kept as (the test client too). */
export const flat = (v: unknown): string | number | boolean | undefined =>
  typeof v === 'string' || typeof v === 'boolean' ? v : Number.isFinite(v) ? (v as number) + 0 : undefined

// A `__proto__` key (JSON.parse makes it an own key of a flag value) is left out: receivers refuse
// it (prototype pollution), and a refused batch would take every other event in it down too.
const parse = (json: string | undefined): JsonValue | undefined =>
  json === undefined ? undefined : (JSON.parse(json, (key, v: unknown) => (key === '__proto__' ? undefined : v)) as JsonValue)
