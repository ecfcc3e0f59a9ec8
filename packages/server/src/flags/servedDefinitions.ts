// What the server evaluates from when it holds flag definitions (--flags FILE, --flags-url URL, a
// data-dir generation, a --snapshot): one slot, replaced only by a candidate that parses, validates
// and passes the shrink guard. Every source offers its candidates here, so "nothing can wipe what
// is served" is enforced in one place.
import { createHash } from 'node:crypto'
import type { FlagdCore } from '@openfeature/flagd-core'
import { stableStringify } from '@holdfast/core'
import { parseFlagDefinitions } from '../flagDefinitions'
import { checkShrink } from './shrinkGuard'

/** Where the definitions being served came from (`metadata.holdfast.source`). */
export type ServedSource = 'upstream' | 'data-dir' | 'snapshot' | 'file'

/** The definitions in service. */
export interface Served {
  core: FlagdCore
  /** The flagd JSON text exactly as received. */
  text: string
  /** A content hash of the definitions (16 hex chars): equal definitions, equal version. */
  version: string
  /** Canonical JSON of each flag, by key, to tell which flags an update changed. */
  flags: ReadonlyMap<string, string>
  source: ServedSource
  /** Epoch ms when the source last vouched for these definitions (a fetch, a 304, a file read). */
  fetchedAt: number
}

/** Why a candidate was not applied. `unchanged` is not a refusal: the same content, re-confirmed. */
export type OfferResult =
  | { applied: true; changed: string[]; served: Served }
  | { applied: false; unchanged: true; served: Served }
  | { applied: false; unchanged?: false; refusal: { reason: 'invalid' | 'empty' | 'shrink'; message: string } }

/** The slot; see the file comment. */
export interface DefinitionsSlot {
  current(): Served | undefined
  /**
   * Offers flagd text from `source`. `guard: false` skips the shrink check, for loading what this
   * server itself saved (data dir, snapshot) into an empty slot. An offer never throws.
   */
  offer(text: string, source: ServedSource, fetchedAt: number, options?: { guard?: boolean }): OfferResult
  /** The source vouched again for what is served (a 304): moves `fetchedAt` only. */
  confirm(fetchedAt: number, source?: ServedSource): void
  /** Drops what is served (`--on-upstream-unauthorized clear`). */
  clear(): void
}

/** Creates an empty {@link DefinitionsSlot}. `strict` is flagd schema validation (default true). */
export function createDefinitionsSlot(options: { maxShrinkPercent: number; strict?: boolean; warn?: (message: string) => void }): DefinitionsSlot {
  let served: Served | undefined
  return {
    current: () => served,
    offer(text, source, fetchedAt, offerOptions = {}) {
      const candidate = readCandidate(text, options.strict ?? true, options.warn)
      if (!candidate.ok) return { applied: false, refusal: { reason: candidate.reason, message: candidate.message } }
      if (served && served.version === candidate.version) {
        served = { ...served, fetchedAt: Math.max(served.fetchedAt, fetchedAt), source }
        return { applied: false, unchanged: true, served }
      }
      if (offerOptions.guard !== false) {
        const verdict = checkShrink(served ? served.flags.keys() : [], new Set(candidate.flags.keys()), options.maxShrinkPercent)
        if (!verdict.ok) return { applied: false, refusal: { reason: verdict.reason, message: verdict.message } }
      }
      const changed = changedKeys(served?.flags, candidate.flags)
      served = { core: candidate.core, text, version: candidate.version, flags: candidate.flags, source, fetchedAt }
      return { applied: true, changed, served }
    },
    confirm(fetchedAt, source) {
      if (served) served = { ...served, fetchedAt: Math.max(served.fetchedAt, fetchedAt), source: source ?? served.source }
    },
    clear() {
      served = undefined
    },
  }
}

type Candidate =
  | { ok: true; core: FlagdCore; version: string; flags: Map<string, string> }
  | { ok: false; reason: 'invalid' | 'empty'; message: string }

function readCandidate(text: string, strict: boolean, warn?: (message: string) => void): Candidate {
  // A BOM (some editors and Windows tools write one) is not part of the JSON.
  const clean = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  const parsed = parseFlagDefinitions(clean, { strict, warn })
  if (!parsed.ok) return { ok: false, reason: 'invalid', message: parsed.error }
  if (parsed.count === 0) return { ok: false, reason: 'empty', message: 'the document defines no flags' }
  const document = JSON.parse(clean) as { flags: Record<string, unknown>; $evaluators?: unknown; metadata?: unknown }
  const flags = new Map<string, string>()
  // A shared $evaluator change changes every flag that references it; folding the evaluators into
  // each flag's fingerprint over-reports rather than missing a change.
  const shared = stableStringify([document.$evaluators ?? null, document.metadata ?? null])
  for (const [key, flag] of Object.entries(document.flags)) flags.set(key, `${stableStringify(flag)}|${shared}`)
  const version = createHash('sha256').update(stableStringify(document)).digest('hex').slice(0, 16)
  return { ok: true, core: parsed.core, version, flags }
}

function changedKeys(before: ReadonlyMap<string, string> | undefined, after: ReadonlyMap<string, string>): string[] {
  const changed: string[] = []
  for (const [key, fingerprint] of after) if (before?.get(key) !== fingerprint) changed.push(key)
  if (before) for (const key of before.keys()) if (!after.has(key)) changed.push(key)
  return changed.sort()
}
