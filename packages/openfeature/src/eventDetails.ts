// OpenFeature's `track(name, context, details)` as Holdfast's `logEvent(name, { value, metadata })`.
// Holdfast event metadata is flat (string | number | boolean); anything else a caller puts in the
// details is left out with a warning, so one odd field can never cost the event. A Date becomes
// its ISO string. Reading the details cannot throw into the app: a throwing getter loses only
// that field.
import type { TrackingEventDetails } from '@openfeature/web-sdk'
import type { FlagMetadata, Logger } from '@holdfast/core'

/** What `client.logEvent` takes as its second argument. */
export interface EventOptionsFromDetails {
  value?: number
  metadata?: FlagMetadata
}

/** Converts tracking details; fields left out are named in one warning. */
export function toEventOptions(details: TrackingEventDetails | undefined, logger: Logger): EventOptionsFromDetails {
  const options: EventOptionsFromDetails = {}
  if (details === null || typeof details !== 'object') return options
  const dropped: string[] = []
  let keys: string[] = []
  try {
    keys = Object.keys(details)
  } catch {}
  const metadata: FlagMetadata = {}
  let count = 0
  for (const key of keys) {
    let raw: unknown
    try {
      raw = (details as Record<string, unknown>)[key]
    } catch {
      dropped.push(key)
      continue
    }
    if (key === 'value') {
      if (typeof raw === 'number' && Number.isFinite(raw)) options.value = raw
      else if (raw !== undefined) dropped.push(key)
      continue
    }
    const value = flat(raw)
    if (value === undefined) {
      if (raw !== undefined) dropped.push(key)
      continue
    }
    // defineProperty, so a field named `__proto__` is a field like any other.
    Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true })
    count++
  }
  if (count > 0) options.metadata = metadata
  if (dropped.length > 0)
    logger.warn(`[holdfast] track(): left out ${dropped.map((k) => `"${k}"`).join(', ')}: event metadata values must be strings, finite numbers or booleans`)
  return options
}

function flat(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString()
  return undefined
}
