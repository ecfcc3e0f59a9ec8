// The documents the relay writes and reads back: data-dir generations (definitions, or per-context
// answers in proxy mode) and snapshot files. Written in zod because they are read at a boundary:
// a file on disk may be anything (an old version, a hand edit, another program's JSON).
import { z } from 'zod'
import { bootstrapSchema } from '../ofrep/schemas'
import { lineageSchema } from './lineage'
import { snapshotCredentialsSchema } from './snapshotCredentials'
import { MAX_VALUE_DEPTH, valueDepth } from './valueDepth'

const primitive = z.union([z.string(), z.number(), z.boolean()])
const flagMetadata = z.record(z.string(), primitive)

/** A data-dir generation holding flag definitions (flags-url or file mode). */
export const definitionsRecordSchema = z.object({
  kind: z.literal('definitions'),
  /** The flagd text as received. */
  text: z.string(),
  version: z.string(),
  fetchedAt: z.number().finite(),
  /** The upstream's ETag for this text, sent as If-None-Match after a restart. */
  etag: z.string().optional(),
  /**
   * With --redis: the store's version of this text, so that after a restart a Redis restored from
   * an older dump cannot move the relay back. Dropped (not trusted) when it is not a whole number.
   */
  storeVersion: z.number().int().nonnegative().optional().catch(undefined),
  /**
   * With --redis, for a text the relay polled without the store's version (cut off from it): the
   * newest store version it had seen when it asked. A copy in the store up to that version is older.
   */
  storeSince: z.number().int().nonnegative().optional().catch(undefined),
  /**
   * With --redis: the steps that led to this text (lineage.ts), kept so that a restart publishes
   * (leading) or judges (following) with the history it had. Dropped when it is not one.
   */
  lineage: lineageSchema.optional().catch(undefined),
})
/** A data-dir generation holding flag definitions. */
export type DefinitionsRecord = z.infer<typeof definitionsRecordSchema>

/**
 * A flag value as JSON.parse gave it, nested at most {@link MAX_VALUE_DEPTH} levels (the limit the
 * proxy accepts from its upstream with): checked without recursion, so the levels of the record
 * around it do not count, and kept as parsed (a `"__proto__"` key inside it stays, as it was served).
 */
const flagValue = z.unknown().refine((value) => valueDepth(value) <= MAX_VALUE_DEPTH, { message: `nested deeper than ${MAX_VALUE_DEPTH} levels` })

/** One held flag of one context, as the proxy keeps it (the core's merge result, minus `source`). */
export const heldFlagSchema = z.object({
  key: z.string(),
  value: flagValue.optional(),
  variant: z.string().optional(),
  reason: z.string().optional(),
  metadata: flagMetadata.optional(),
  errorCode: z.string().optional(),
  updatedAt: z.number().finite().optional(),
  stale: z.boolean(),
})

/** The last good answer for one context (keyed by a hash of the context and forwarded headers). */
export const contextRecordSchema = z.object({
  key: z.string(),
  fetchedAt: z.number().finite(),
  etag: z.string().optional(),
  metadata: flagMetadata.optional(),
  flags: z.array(heldFlagSchema),
  /** The upstream is itself a relay and said this answer was stale (its `fetchedAt` is that relay's). */
  upstreamStale: z.boolean().optional(),
  /** Flags the upstream removed with FLAG_NOT_FOUND since its last clean answer (absent in records of older servers). */
  notFound: z.array(z.string()).max(1000).optional().catch(undefined),
  /**
   * Data dir with --redis: the store's version this answer was asked for at (or taken at), so that
   * after a restart the store's order, not two machines' clocks, says whether the store's copy is
   * newer. Dropped (not trusted) when it is not a whole number.
   */
  storeVersion: z.number().int().nonnegative().optional().catch(undefined),
  /** Data dir with --redis, for an answer asked for without a version (cut off from the store): the newest version seen then. */
  storeSince: z.number().int().nonnegative().optional().catch(undefined),
})
/** The last good answer for one context. */
export type ContextRecord = z.infer<typeof contextRecordSchema>

/** A data-dir generation in proxy mode: every held context, least recently used first. */
export const contextsRecordSchema = z.object({
  kind: z.literal('contexts'),
  contexts: z.array(contextRecordSchema),
  /**
   * The contexts whose values an upstream 401/403 dropped (`--on-upstream-unauthorized clear`,
   * `clear-after`), and when: a snapshot older than that is not served for them after a restart.
   * Absent in records of older servers; one that cannot be read is dropped, not the generation.
   */
  cleared: z.array(z.object({ key: z.string().max(256), at: z.number().finite() })).optional().catch(undefined),
  /**
   * `clear-after`: the contexts refused (401/403) in a run of their credentials (hash) not yet long
   * enough to drop them, and since when the run goes on (epoch ms): a restart carries the run on.
   * Absent in records of older servers. Each entry is read on its own ({@link refusedInRunSchema}):
   * one that cannot be read is left out (and said), not the others, nor the generation.
   */
  refused: z.unknown().optional(),
})
/** One entry of a contexts record's `refused` list: a context refused in a `clear-after` run. */
export const refusedInRunSchema = z.object({
  key: z.string().max(256),
  credentials: z.string().max(256),
  since: z.number().finite(),
  /** --redis: the place in the store's order of the run's latest refused request (absent in records of older servers; dropped when not a whole number). */
  place: z.number().int().nonnegative().optional().catch(undefined),
})
/** A context refused in a `clear-after` run, as the data dir keeps it (see `contextsRecordSchema`). */
export type RefusedInRun = z.infer<typeof refusedInRunSchema>

/**
 * The entries of a contexts record's `refused` list that read, and how many did not (a list that
 * is no list: all of it, counted as one). Before, one entry that did not read dropped the whole list
 * in silence: every run in it was forgotten, and the revoked users' values held until their next 401.
 */
export function readRefused(refused: unknown): { runs: RefusedInRun[]; unread: number } {
  if (refused === undefined) return { runs: [], unread: 0 }
  if (!Array.isArray(refused)) return { runs: [], unread: 1 }
  const runs: RefusedInRun[] = []
  let unread = 0
  for (const entry of refused) {
    const read = refusedInRunSchema.safeParse(entry)
    if (read.success) runs.push(read.data)
    else unread++
  }
  return { runs, unread }
}
/** A data-dir generation in proxy mode. */
export type ContextsRecord = z.infer<typeof contextsRecordSchema>

/**
 * --redis, proxy mode: what a relay writes in a context's place in the store when an upstream
 * 401/403 dropped its values (`--on-upstream-unauthorized clear`, `clear-after`), at the drop's place
 * in the store's order. An answer asked for before the drop is older and is not written over it, nor
 * taken by any relay; one asked for after it replaces it. `at` is the dropping relay's clock (epoch ms).
 * It is no {@link contextRecordSchema} (no `flags`, no `fetchedAt`), so a relay of an older version
 * refuses it as unreadable and never serves it as values.
 */
export const dropMarkerSchema = z.object({
  kind: z.literal('dropped'),
  key: z.string(),
  at: z.number().finite(),
})
/** A context's drop, as shared through the store. */
export type DropMarker = z.infer<typeof dropMarkerSchema>
/** The text a drop marker starts with (see {@link dropMarkerSchema}): only such a body is read as one. */
export const DROP_MARKER_PREFIX = '{"kind":"dropped"'

/**
 * A data-dir generation saying that what was held is gone on purpose: the upstream refused the
 * relay's credentials and `--on-upstream-unauthorized clear` dropped the definitions. A restart
 * must not bring back an older generation (or a snapshot taken before `at`).
 */
export const clearedRecordSchema = z.object({
  kind: z.literal('cleared'),
  at: z.number().finite(),
  reason: z.string(),
  /** The version dropped (absent in records of older servers): not served again from a shared store until the upstream answers. */
  version: z.string().max(64).optional(),
})
/** A data-dir generation recording a deliberate clear. */
export type ClearedRecord = z.infer<typeof clearedRecordSchema>

/** What the definitions modes read back from the data dir: definitions, or the record of a clear. */
export const definitionsOrClearedSchema = z.discriminatedUnion('kind', [definitionsRecordSchema, clearedRecordSchema])

/** Any data-dir generation payload. */
export const generationRecordSchema = z.discriminatedUnion('kind', [definitionsRecordSchema, contextsRecordSchema, clearedRecordSchema])

/**
 * A definitions snapshot file (`holdfast-server snapshot --flags-url|--flags … --out FILE`, read by
 * `--snapshot FILE`): the flagd document plus when it was taken, so what is served from it says its
 * true age. `--snapshot` also accepts a bare flagd document (its age is then the file's mtime).
 */
export const definitionsSnapshotSchema = z.object({
  holdfastSnapshot: z.literal(1),
  kind: z.literal('definitions'),
  fetchedAt: z.number().finite(),
  version: z.string(),
  definitions: z.record(z.string(), z.unknown()),
})
/** A definitions snapshot file. */
export type DefinitionsSnapshot = z.infer<typeof definitionsSnapshotSchema>

/** A values snapshot is a core `Bootstrap`, read with the one wire schema of the server. */
export { bootstrapSchema } from '../ofrep/schemas'

/**
 * A values snapshot file (`holdfast-server snapshot --upstream … --out FILE`): a core `Bootstrap`,
 * plus `holdfastCredentials` when made with `--header` (see `snapshotCredentials.ts`). The published
 * JSON Schema (`@holdfast/server/schema/bootstrap.schema.json`) is generated from it. A relay reads
 * the two parts apart (`readSnapshot`), so a malformed record is named as such.
 */
export const valuesSnapshotSchema = bootstrapSchema
  .extend({ holdfastCredentials: snapshotCredentialsSchema.optional() })
  .meta({
    title: 'Holdfast Bootstrap',
    description: 'One user\'s flag values as a snapshot: server-rendered bootstrap or build-time fallback (with holdfastCredentials when made by `holdfast-server snapshot --header`).',
  })

/** Parses JSON text against a schema; undefined for anything that is not valid. */
export function readRecord<T>(schema: z.ZodType<T>, text: string): T | undefined {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  // A value nested a few thousand deep parses, then overflows the schema's recursion (RangeError):
  // unreadable like a torn file, so the caller goes on to the previous good one.
  try {
    const parsed = schema.safeParse(json)
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
