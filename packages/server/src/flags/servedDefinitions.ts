// The definitions a remote source serves (--flags-url, a data-dir generation, a --snapshot): one
// slot, replaced only by a candidate that parses, validates and passes the guard. Every candidate
// of the URL source, its layers and the snapshot command goes through here, so "nothing from the
// upstream can wipe what is served" is enforced in one place.
import { compileFlagDefinitions } from './flagDefinitions'
import type { FlagDefinitionsVersion, FlagOrigin } from './flagSource'
import { changedKeys, refusalReason } from './guard'
import type { ServerLogger } from '../logger'

/** What an offer did. `unchanged`: the same content, re-confirmed (not a refusal). */
export type OfferResult =
  | { applied: true; changed: string[]; version: FlagDefinitionsVersion; previous?: FlagDefinitionsVersion }
  | { applied: false; unchanged: true; version: FlagDefinitionsVersion }
  | { applied: false; unchanged?: false; refusal: { reason: 'invalid' | 'empty' | 'shrink'; message: string } }

/** The slot; see the file comment. */
export interface DefinitionsSlot {
  current(): FlagDefinitionsVersion | undefined
  /**
   * Offers flagd text. `guard: false` skips the shrink check (loading what this server itself
   * saved into an empty slot, or an operator's explicit override); zero flags are refused always.
   * Offers are applied one at a time, in call order. Never rejects.
   */
  offer(text: string, origin: FlagOrigin, fetchedAt: number, options?: OfferOptions): Promise<OfferResult>
  /** The origin vouched again for what is served (a 304): moves `fetchedAt` (and the origin) only. */
  confirm(fetchedAt: number, origin?: FlagOrigin): void
  /** Drops what is served (`--on-upstream-unauthorized clear`). */
  clear(): void
}

/** Options of {@link DefinitionsSlot.offer}. */
export interface OfferOptions {
  /** Whether the shrink guard applies. Default true. */
  guard?: boolean
  /**
   * Asked only when the guard refuses the offer, with what is served then and the offer: `ok`
   * applies it anyway (the store's lineage shows every step from what is served was within the
   * rule); otherwise its `message` joins the refusal's. Default: none (the guard decides).
   */
  vouch?: (served: FlagDefinitionsVersion, next: FlagDefinitionsVersion) => { ok: true } | { ok: false; message: string }
}

/** Creates an empty {@link DefinitionsSlot}. `strict` is flagd schema validation (default true). */
export function createDefinitionsSlot(options: { maxShrinkPercent: number; strict?: boolean; warn?: (message: string) => void }): DefinitionsSlot {
  let served: FlagDefinitionsVersion | undefined
  let chain: Promise<unknown> = Promise.resolve()

  const apply = async (text: string, origin: FlagOrigin, fetchedAt: number, guard: boolean, vouch: OfferOptions['vouch']): Promise<OfferResult> => {
    const parsed = await compileFlagDefinitions(text, { strict: options.strict ?? true, warn: options.warn })
    if (!parsed.ok) return { applied: false, refusal: { reason: 'invalid', message: parsed.error } }
    if (parsed.count === 0) return { applied: false, refusal: { reason: 'empty', message: 'the document defines no flags' } }
    if (served && served.version === parsed.version) {
      served = { ...served, fetchedAt: Math.max(served.fetchedAt, fetchedAt), origin }
      return { applied: false, unchanged: true, version: served }
    }
    const next: FlagDefinitionsVersion = { version: parsed.version, definitions: parsed.definitions, evaluator: parsed.core, flagCount: parsed.count, origin, fetchedAt }
    if (guard) {
      const refusal = refusalReason(served, next, { maxShrinkPercent: options.maxShrinkPercent })
      const vouched = refusal && served && next.flagCount > 0 ? vouch?.(served, next) : undefined
      if (refusal && !vouched?.ok) return { applied: false, refusal: { reason: 'shrink', message: vouched ? `${refusal}; ${vouched.message}` : refusal } }
    }
    const previous = served
    served = next
    return previous ? { applied: true, changed: changedKeys(previous, next), version: next, previous } : { applied: true, changed: changedKeys(undefined, next), version: next }
  }

  return {
    current: () => served,
    offer(text, origin, fetchedAt, offerOptions = {}) {
      const run = chain.then(() => apply(text, origin, fetchedAt, offerOptions.guard !== false, offerOptions.vouch))
      chain = run.catch(() => {})
      return run.catch((error: unknown) => ({ applied: false as const, refusal: { reason: 'invalid' as const, message: String((error as Error)?.message ?? error) } }))
    },
    confirm(fetchedAt, origin) {
      if (served) served = { ...served, fetchedAt: Math.max(served.fetchedAt, fetchedAt), origin: origin ?? served.origin }
    },
    clear() {
      served = undefined
    },
  }
}

/** A layer that may be served while the origin cannot be: a data-dir generation or a snapshot. */
export interface LayerCandidate {
  text: string
  fetchedAt: number
  origin: 'data-dir' | 'snapshot'
}

/**
 * Offers layer `candidates` to `slot` (unguarded: into an empty slot) newest first, until one is
 * applied; on a tie the first given wins. A time ahead of `now` counts as now: a file written while
 * the clock ran fast (or an mtime in the future) was not fetched later than now, and served as is
 * it would say "just fetched" for hours. Resolves with the candidate applied and the offer's result;
 * or with `unusable`, the text of an intact data-dir generation the slot refused (saved by a
 * `--lenient` run or another version, repaired by hand), so the caller can load the generation
 * before it; or with nothing.
 */
export async function offerNewestLayer<C extends LayerCandidate>(
  slot: DefinitionsSlot,
  candidates: C[],
  now: number,
  log: ServerLogger,
  /** Told why the snapshot was refused (invalid, empty), instead of the warning. */
  onSnapshotRefused?: (message: string) => void,
): Promise<{ candidate: C; result: Extract<OfferResult, { applied: true }> } | { unusable: string } | undefined> {
  for (const candidate of candidates) candidate.fetchedAt = Math.min(candidate.fetchedAt, now)
  candidates.sort((a, b) => b.fetchedAt - a.fetchedAt)
  for (const candidate of candidates) {
    const result = await slot.offer(candidate.text, candidate.origin, candidate.fetchedAt, { guard: false })
    if (result.applied) return { candidate, result }
    if ('refusal' in result) {
      if (candidate.origin === 'snapshot' && onSnapshotRefused) onSnapshotRefused(result.refusal.message)
      else log.warn(`cannot serve the ${candidate.origin}: ${result.refusal.message}`)
      if (candidate.origin === 'data-dir') return { unusable: candidate.text }
    }
  }
  return undefined
}
