// Reading an upstream OFREP bulk answer (CONTRACT §2.1), tolerantly: the OFREP schema contradicts
// its own examples, so only what the merge needs is required (a `flags` array; per entry a string
// `key`). An entry without a string key is skipped (the answer then counts as partial); optional
// fields of the wrong type are dropped rather than failing the whole answer.
import type { FlagEntry } from '@holdfast/core'
import { z } from 'zod'
import { allFinite, MAX_VALUE_DEPTH, valueDepth } from './valueDepth'

const optional = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined)

// The value is taken as JSON.parse gave it (it is JSON), its depth checked without recursion below.
const entrySchema = z.object({
  key: z.string(),
  value: z.unknown().optional(),
  reason: optional(z.string()),
  variant: optional(z.string()),
  metadata: optional(z.record(z.string(), z.unknown())),
  errorCode: z.unknown().optional(),
  errorDetails: optional(z.string()),
})

// Read field by field: an unreadable `fetchedAt` (a string, `null` where NaN was serialized, a
// time before 1970) is unknown, never a reason to lose the stale bit beside it; a `stale` that is
// present but not `false` (e.g. the string "true") cannot vouch for a fresh answer.
const holdfastSchema = z.object({
  fetchedAt: z.number().finite().positive().optional().catch(undefined),
  stale: z.unknown().transform((stale) => stale !== undefined && stale !== false),
})

const answerSchema = z.object({
  flags: z.array(z.unknown()),
  metadata: optional(z.record(z.string(), z.unknown())),
})

/** An upstream bulk answer, read. `upstreamHoldfast` is set when the upstream is itself a relay. */
export interface UpstreamAnswer {
  entries: FlagEntry[]
  skipped: number
  /** The flag-set metadata, primitives only (the `holdfast` key is taken out). */
  metadata?: Record<string, string | number | boolean>
  upstreamHoldfast?: { fetchedAt?: number; stale?: boolean }
}

/** Reads a 200's body; `undefined` when it is not an OFREP bulk answer (HTML, not JSON, no flags). */
export function readUpstreamAnswer(text: string, contentType: string | undefined): { ok: true; answer: UpstreamAnswer } | { ok: false; message: string; tooLarge?: true } {
  if (contentType && !/json/i.test(contentType)) return { ok: false, message: `expected JSON, got ${contentType.split(';')[0]}` }
  let json: unknown
  try {
    // A UTF-8 byte order mark is not part of the JSON (fetch's text() and json() drop it; the
    // relay reads the raw bytes), as the definitions reader and the snapshot files already skip it.
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch {
    return { ok: false, message: 'the body is not JSON' }
  }
  try {
    return readAnswer(json)
  } catch (error) {
    // A value nested a few thousand deep parses as JSON, then overflows the schema's recursion
    // (RangeError): an unreadable answer like any other, never an exception in the relay's start,
    // its refresh or a request.
    return { ok: false, message: `the body cannot be read: ${(error as Error)?.message ?? String(error)}` }
  }
}

function readAnswer(json: unknown): { ok: true; answer: UpstreamAnswer } | { ok: false; message: string; tooLarge?: true } {
  const parsed = answerSchema.safeParse(json)
  if (!parsed.success) return { ok: false, message: 'the body has no "flags" array' }
  const entries: FlagEntry[] = []
  let skipped = 0
  for (const raw of parsed.data.flags) {
    const entry = entrySchema.safeParse(raw)
    if (!entry.success) {
      skipped++
      continue
    }
    // Refused whole, as an answer that cannot be read: a deeper value is no flag value, and what is
    // accepted here is saved and must be read back by the same limit (valueDepth.ts).
    if (valueDepth(entry.data.value) > MAX_VALUE_DEPTH) return { ok: false, message: `the value of flag ${JSON.stringify(entry.data.key)} is nested deeper than ${MAX_VALUE_DEPTH} levels`, tooLarge: true }
    const e: FlagEntry = { key: entry.data.key }
    const { value } = entry.data
    // `null` means "use the caller's default", like an absent value. A number out of the double
    // range (`1e400`) parses as Infinity, which no JSON carries: served, it went out as null (the
    // caller's default) and the held value was lost. It is that flag's PARSE_ERROR instead, so the
    // merge keeps what was held for it, as the browser client does.
    if (value !== undefined && value !== null) {
      if (allFinite(value)) e.value = value as FlagEntry['value']
      else [e.errorCode, e.errorDetails] = ['PARSE_ERROR', 'the value is not JSON: a number out of range']
    }
    if (entry.data.reason !== undefined) e.reason = entry.data.reason
    if (entry.data.variant !== undefined) e.variant = entry.data.variant
    // OFREP metadata values are strings, numbers and booleans; any other entry (a vendor's nested
    // rules) is left out alone, where before it cost the flag all its metadata.
    if (entry.data.metadata !== undefined) e.metadata = primitives(entry.data.metadata)
    // An errorCode of another type (a numeric 404) still says the flag failed: dropped as a field of
    // the wrong type, it left `{ key }`, a success with no value, and the value held was lost.
    // `""` is how an upstream without `omitempty` (Go, Java) writes "no error" (read as a failure, no
    // flag of it ever changed); with no value it cannot be told from a failure whose code was
    // emptied, so it keeps the value held (PARSE_ERROR), exactly as the browser client reads it.
    const { errorCode } = entry.data
    if (errorCode === '' ? e.value === undefined : errorCode != null) e.errorCode = (typeof errorCode === 'string' && errorCode) || 'PARSE_ERROR'
    if (entry.data.errorDetails !== undefined) e.errorDetails = entry.data.errorDetails
    entries.push(e)
  }
  const answer: UpstreamAnswer = { entries, skipped }
  const metadata = parsed.data.metadata
  if (metadata) {
    const flat = primitives(metadata, 'holdfast')
    if (Object.keys(flat).length > 0) answer.metadata = flat
    const holdfast = holdfastSchema.safeParse(metadata.holdfast)
    if (metadata.holdfast !== undefined && holdfast.success) {
      answer.upstreamHoldfast = { stale: holdfast.data.stale }
      if (holdfast.data.fetchedAt !== undefined) answer.upstreamHoldfast.fetchedAt = holdfast.data.fetchedAt
    }
  }
  return { ok: true, answer }
}

// The entries of a metadata record OFREP allows (string, finite number, boolean), without `skip`.
function primitives(record: Record<string, unknown>, skip?: string): Record<string, string | number | boolean> {
  const flat: Record<string, string | number | boolean> = {}
  for (const [key, value] of Object.entries(record)) {
    if (key === skip || key === '__proto__') continue
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) flat[key] = value
  }
  return flat
}
