// The events wire format (CONTRACT §2.2), written once in zod: this file is its readable spec.
// The browser client keeps its own small hand-written check (packages/core/src/schemas.ts,
// `isStoredEvent`); test/server/events-schema.test.ts proves on generated documents that the two
// agree where they overlap and lists exactly where this one is stricter.
import { z } from 'zod'

/** Caps on what `POST /holdfast/v1/events` accepts. Each is a refusal with a 4xx, never a 500: 413 past the body's bytes or the batch's events (the client splits it), 400 past the others. */
export const EVENT_LIMITS = {
  /** Request body: 1 MiB (1,048,576 bytes); larger gets 413. */
  maxBodyBytes: 1_048_576,
  /** Events in one batch: 10,000 (the client's default `maxQueued`); more gets 413 `TOO_MANY_EVENTS`. */
  maxEvents: 10_000,
  /** Nesting of the whole body (`{events:[{value:…}]}` is 4 levels before the value's own): 72. */
  maxDepth: 72,
  /** Length of `id`: 128 characters (a UUID is 36). */
  maxIdLength: 128,
  /** Length of `name`, `targetingKey`, `flagKey`, `variant`, `reason`: 1,024 characters. */
  maxStringLength: 1024,
  /** Keys in `metadata`, counted at every level: 100. */
  maxMetadataKeys: 100,
  /** Nesting inside `metadata` (the client sends it flat: 1): 4. */
  maxMetadataDepth: 4,
  /** `metadata` as JSON: 16 KiB. */
  maxMetadataBytes: 16 * 1024,
} as const

/**
 * Object keys refused anywhere in an events body: `__proto__`, which no ordinary JavaScript object
 * can carry as data (assigning it replaces the prototype) and which pollutes prototypes when a
 * consumer merges the event. `constructor` and `prototype` are let through here, unlike in
 * evaluation contexts: they are ordinary keys of flag values (an exposure's `value` comes from the
 * flag definitions) and of `logEvent` metadata, and refusing them would make the client drop a
 * whole batch (a 400 drops it) for an event that harms nothing in a JSON Lines file.
 */
export const FORBIDDEN_EVENT_KEYS: ReadonlySet<string> = new Set(['__proto__'])

const text = (max: number) => z.string().max(max)
const optionalText = text(EVENT_LIMITS.maxStringLength).nullish()

/** Metadata: an object of JSON values, small and shallow (the client sends string | number | boolean values). */
export const eventMetadataSchema = z.record(z.string(), z.json()).superRefine((metadata, ctx) => {
  const shape = measure(metadata)
  if (shape.depth > EVENT_LIMITS.maxMetadataDepth) ctx.addIssue({ code: 'custom', message: `nested more than ${EVENT_LIMITS.maxMetadataDepth} levels deep` })
  if (shape.keys > EVENT_LIMITS.maxMetadataKeys) ctx.addIssue({ code: 'custom', message: `${shape.keys} keys; at most ${EVENT_LIMITS.maxMetadataKeys}` })
  else if (JSON.stringify(metadata).length > EVENT_LIMITS.maxMetadataBytes) ctx.addIssue({ code: 'custom', message: `larger than ${EVENT_LIMITS.maxMetadataBytes} bytes as JSON` })
})

/**
 * One event: `{id, type: "exposure" | "custom", name, time, targetingKey?, flagKey?, value?,
 * variant?, reason?, metadata?}`; `time` in epoch milliseconds. Optional fields may be omitted
 * or null; fields not named here are kept as sent (the client adds e.g. `source`), as JSON values:
 * a number past a double (`1e400` reads as Infinity) is refused there as in `value` and `metadata`.
 * Before, it was let through and stored (and forwarded) as `null`, not the event that was sent.
 */
export const eventSchema = z.object({
  id: z.string().min(1).max(EVENT_LIMITS.maxIdLength),
  type: z.enum(['exposure', 'custom']),
  name: text(EVENT_LIMITS.maxStringLength),
  time: z.number(), // zod 4 refuses NaN and ±Infinity
  targetingKey: optionalText,
  flagKey: optionalText,
  value: z.json().optional(),
  variant: optionalText,
  reason: optionalText,
  metadata: eventMetadataSchema.nullish(),
}).catchall(z.json())

/** The body of `POST /holdfast/v1/events`: `{"events": [Event, ...]}` (other top-level fields are ignored). */
export const eventBatchSchema = z.looseObject({
  events: z.array(eventSchema).max(EVENT_LIMITS.maxEvents),
})

/** An event as the server accepted it. */
export type ReceivedEvent = z.infer<typeof eventSchema>

/**
 * Reads a parsed events body. The shape scan runs first and without recursion, so a body nested
 * 5,000 deep (or holding a `__proto__` key) is a 400 before zod's recursive schemas see it.
 */
export function readEventBatch(body: unknown): { ok: true; events: ReceivedEvent[] } | { ok: false; error: string; tooMany?: true } {
  // Too many events is a batch too large, not a bad one (413: the client splits it; CONTRACT §6), and
  // is said first, so a sender splits before it learns of any bad event. Before, it was a 400 like
  // a bad event, and a client (batchSize over the cap) or relay dropped every event of the batch.
  const events = typeof body === 'object' && body !== null ? (body as { events?: unknown }).events : undefined
  if (Array.isArray(events) && events.length > EVENT_LIMITS.maxEvents) {
    return { ok: false, tooMany: true, error: `${events.length.toLocaleString('en-US')} events in one batch; at most ${EVENT_LIMITS.maxEvents.toLocaleString('en-US')}: send them in smaller batches` }
  }
  const shape = measure(body)
  if (shape.depth > EVENT_LIMITS.maxDepth) return { ok: false, error: `the body is nested more than ${EVENT_LIMITS.maxDepth} levels deep` }
  if (shape.forbidden) return { ok: false, error: `the key "${shape.forbidden}" is not allowed` }
  const parsed = eventBatchSchema.safeParse(body)
  if (parsed.success) return { ok: true, events: parsed.data.events }
  const issue = parsed.error.issues[0]
  return { ok: false, error: `${describePath(issue.path)}: ${issue.message}` }
}

// `events[1].metadata.plan` rather than zod's array of path segments.
function describePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'body'
  let out = ''
  for (const segment of path) out += typeof segment === 'number' ? `[${segment}]` : `${out ? '.' : ''}${String(segment)}`
  return out
}

/** Depth, key count and the first forbidden key of a parsed JSON value, walked with an explicit stack. */
export function measure(value: unknown): { depth: number; keys: number; forbidden?: string } {
  let depth = 0
  let keys = 0
  let forbidden: string | undefined
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [node, level] = stack.pop()!
    if (typeof node !== 'object' || node === null) continue
    if (level > depth) depth = level
    // Past the deepest cap there is no need to keep walking down.
    if (level > EVENT_LIMITS.maxDepth) continue
    if (Array.isArray(node)) {
      for (const item of node) stack.push([item, level + 1])
      continue
    }
    for (const key of Object.keys(node)) {
      keys++
      if (forbidden === undefined && FORBIDDEN_EVENT_KEYS.has(key)) forbidden = key
      stack.push([(node as Record<string, unknown>)[key], level + 1])
    }
  }
  return { depth, keys, forbidden }
}
