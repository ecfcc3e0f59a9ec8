// The wire formats are written once, in zod (@holdfast/server); the browser client reads them with
// small hand-written checks (bytes matter there). These properties prove on generated documents
// that both accept and refuse the same ones, and that the published JSON Schema is current.
//
// The client's checks are imported by relative path: they are internal to @holdfast/core (today
// packages/core/src/protocol/readers.ts, moved there from src/schemas.ts by the core branch).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { bootstrapEnvelopeSchema, bootstrapSchema, flagEntrySchema, ofrepBulkResponseSchema } from '@holdfast/server'
import { parseBootstrap, parseBulkResponse, parseEntry } from '../../packages/core/src/protocol/readers'
import { bootstrapJsonSchema, BOOTSTRAP_SCHEMA_FILE } from '../../packages/server/src/ofrep/jsonSchemas'
import { readUpstreamAnswer } from '../../packages/server/src/flags/upstreamAnswer'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { tempDir } from './helpers'
import { startUpstream } from './relay-fakes'

const RUNS = { numRuns: 400 }

// What arrives over the wire is JSON: every generated document goes through a JSON round trip.
const wire = <T>(arbitrary: fc.Arbitrary<T>) => arbitrary.map((value) => JSON.parse(JSON.stringify(value ?? null)) as unknown)

// Keys are any string but "__proto__": zod's record() drops that key from its output instead of
// judging it (see flags/schemas.ts), which makes "same verdict" meaningless for it.
const key = fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__')
const json = fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('"__proto__"'))
const primitive = fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean())
// Each field is sometimes the right type, sometimes another type, sometimes absent.
const maybe = <T>(good: fc.Arbitrary<T>) => fc.option(fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: json }), { nil: undefined })
const metadata = fc.dictionary(key, primitive, { maxKeys: 3 })

const entry = fc.record(
  {
    key: fc.oneof({ weight: 5, arbitrary: fc.string({ maxLength: 8 }) }, { weight: 1, arbitrary: json }),
    value: maybe(json),
    // Empty forms too, as a server without `omitempty` (Go, Java) writes every optional field:
    // `""`, `null`, `{}`.
    reason: maybe(fc.constantFrom('STATIC', 'TARGETING_MATCH', 'SPLIT', 'DISABLED', 'A_NEW_REASON', '', null)),
    variant: maybe(fc.oneof(fc.string({ maxLength: 5 }), fc.constant(null))),
    metadata: maybe(fc.oneof(metadata, fc.constant(null))),
    errorCode: maybe(fc.constantFrom('FLAG_NOT_FOUND', 'PARSE_ERROR', 'GENERAL', 'SOMETHING_ELSE', '', '', null)),
    errorDetails: maybe(fc.oneof(fc.string({ maxLength: 8 }), fc.constant(null))),
    updatedAt: maybe(fc.nat()),
    extra: fc.option(json, { nil: undefined }),
  },
  { requiredKeys: [] },
)

const bulk = fc.oneof(
  { weight: 4, arbitrary: fc.record({ flags: fc.array(entry, { maxLength: 4 }), metadata: fc.option(json, { nil: undefined }) }, { requiredKeys: ['flags'] }) },
  { weight: 1, arbitrary: fc.record({ flags: json }) },
  { weight: 1, arbitrary: json },
)

const context = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.string({ maxLength: 6 }), fc.dictionary(key, json, { maxKeys: 3 })).map(([targetingKey, rest]) => ({ ...rest, targetingKey })) },
  { weight: 1, arbitrary: json },
)
const bootstrap = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      { context, flags: fc.oneof({ weight: 5, arbitrary: fc.array(entry, { maxLength: 4 }) }, { weight: 1, arbitrary: json }), etag: maybe(fc.string({ maxLength: 6 })), fetchedAt: maybe(fc.nat()), stale: maybe(fc.boolean()) },
      { requiredKeys: ['context', 'flags'] },
    ),
  },
  { weight: 1, arbitrary: json },
)

// What a reader keeps of a spec-valid entry: every field, except a null one (a serializer's absent
// field; a null value is "use the caller's default"), which both treat as absent. `errorCode: ""`
// means "no error" beside a value; with no value it is PARSE_ERROR (the held value is kept).
function kept(valid: Record<string, unknown>) {
  const { extra: _extra, ...rest } = valid
  const known = ['key', 'value', 'reason', 'variant', 'metadata', 'errorCode', 'errorDetails', 'updatedAt']
  const out = Object.fromEntries(Object.entries(rest).filter(([k, v]) => known.includes(k) && v !== null && v !== undefined))
  if (out.errorCode === '') {
    if ('value' in out) delete out.errorCode
    else out.errorCode = 'PARSE_ERROR'
  }
  return out
}

const readableEntry = z.object({ key: z.string() }).loose()

describe('zod schemas and the client checks agree', () => {
  it('OFREP bulk answers: the same documents are accepted and refused', () => {
    fc.assert(
      fc.property(wire(bulk), (document) => {
        expect(parseBulkResponse(document) !== undefined).toBe(ofrepBulkResponseSchema.safeParse(document).success)
      }),
      RUNS,
    )
  })

  it('flag entries: the same are skipped, and a spec-valid entry is read whole', () => {
    fc.assert(
      fc.property(wire(entry), (candidate) => {
        const read = parseEntry(candidate)
        expect(read !== undefined).toBe(readableEntry.safeParse(candidate).success)
        if (flagEntrySchema.safeParse(candidate).success) expect(read).toEqual(kept(candidate as Record<string, unknown>))
      }),
      RUNS,
    )
  })

  // CONTRACT §9: the relay merges an upstream answer exactly as the client does, so it must read
  // each entry as the client does first: success or failure, which code, which value.
  it('the relay reads every bulk entry as the client does (empty forms included)', () => {
    fc.assert(
      fc.property(fc.array(wire(entry), { maxLength: 4 }), (flags) => {
        const relay = readUpstreamAnswer(JSON.stringify({ flags }), 'application/json')
        const client = parseBulkResponse({ flags })!
        expect(relay.ok).toBe(true)
        if (!relay.ok) return
        const sees = (e: { key: string; value?: unknown; errorCode?: string; reason?: string; variant?: string }) => [e.key, e.value, e.errorCode, e.reason, e.variant]
        expect(relay.answer.skipped).toBe(client.skipped)
        expect(relay.answer.entries.map(sees)).toEqual(client.entries.map(sees))
      }),
      RUNS,
    )
  })

  it('Bootstraps: the same are accepted and refused, and a spec-valid one is read whole', () => {
    fc.assert(
      fc.property(wire(bootstrap), (candidate) => {
        const read = parseBootstrap(candidate)
        expect(read !== undefined).toBe(bootstrapEnvelopeSchema.safeParse(candidate).success)
        const valid = bootstrapSchema.safeParse(candidate)
        if (valid.success) {
          const doc = candidate as { context: object; flags: Array<Record<string, unknown>>; etag?: string; fetchedAt?: number; stale?: boolean }
          expect(read?.skipped).toBe(0)
          expect(read?.bootstrap).toEqual({
            context: doc.context,
            flags: doc.flags.map(kept),
            fetchedAt: doc.fetchedAt ?? 0,
            ...(doc.etag === undefined ? {} : { etag: doc.etag }),
            // `stale: false` is the default, kept as absent.
            ...(doc.stale === true ? { stale: true } : {}),
          })
        }
      }),
      RUNS,
    )
  })

  it('an omitted optional field is never a reason to refuse', () => {
    expect(bootstrapSchema.safeParse({ context: { targetingKey: 'u' }, flags: [{ key: 'a' }] }).success).toBe(true)
    expect(flagEntrySchema.safeParse({ key: 'a' }).success).toBe(true)
    expect(ofrepBulkResponseSchema.safeParse({ flags: [] }).success).toBe(true)
  })

  it('an optional field a serializer wrote empty (null, "", {}) is never a reason to refuse', () => {
    const empty = { key: 'a', value: true, reason: 'STATIC', variant: '', errorCode: '', errorDetails: '', metadata: null }
    expect(flagEntrySchema.safeParse(empty).success).toBe(true)
    expect(flagEntrySchema.safeParse({ ...empty, reason: null, variant: null, errorCode: null, errorDetails: null, metadata: {}, updatedAt: null }).success).toBe(true)
    expect(bootstrapSchema.safeParse({ context: { targetingKey: 'u' }, flags: [empty] }).success).toBe(true)
    expect(parseEntry(empty)).toEqual({ key: 'a', value: true, reason: 'STATIC', variant: '', errorDetails: '' })
  })
})

describe('the published JSON Schema of the Bootstrap format', () => {
  it('is current (run `npm run schemas:server` after changing the zod schema)', () => {
    const committed = JSON.parse(readFileSync(new URL(`../../packages/server/${BOOTSTRAP_SCHEMA_FILE}`, import.meta.url), 'utf8'))
    expect(committed).toEqual(bootstrapJsonSchema())
  })

  it('requires what a reader requires and nothing more', () => {
    const schema = bootstrapJsonSchema() as { required: string[]; properties: Record<string, { required?: string[] }> }
    expect(schema.required.sort()).toEqual(['context', 'flags'])
    expect(schema.properties.context.required).toEqual(['targetingKey'])
  })

  // `holdfast-server snapshot --upstream … --header …` records whose values the file holds in
  // `holdfastCredentials`; the published schema said nothing of it, so a malformed record (which a
  // relay refuses to serve) passed a CI step's check against the schema.
  it('describes holdfastCredentials: a values snapshot made with --header validates, one with a malformed record does not', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'gold', reason: 'STATIC' }] }) })
    const out = join(await tempDir(), 'fallback.json')
    const code = await runSnapshotCli(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out, '--header', 'Authorization: Bearer k', '--header', 'X-Tenant: a'], { out: () => {}, err: () => {} })
    expect(code).toBe(0)
    const written = JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>
    expect(written.holdfastCredentials).toMatchObject({ headers: ['authorization', 'x-tenant'] })
    // Validated against the committed file (what a user's tooling reads), read as JSON Schema.
    const published = z.fromJSONSchema(JSON.parse(readFileSync(new URL(`../../packages/server/${BOOTSTRAP_SCHEMA_FILE}`, import.meta.url), 'utf8')))
    expect(published.safeParse(written).success).toBe(true)
    const { holdfastCredentials, ...plain } = written
    expect(published.safeParse(plain).success).toBe(true)
    const malformed = [
      'Bearer k',
      { ...holdfastCredentials, sha256: 'not-a-hash' },
      { ...holdfastCredentials, headers: 'authorization' },
      { headers: holdfastCredentials.headers, sha256: holdfastCredentials.sha256 },
      { ...holdfastCredentials, salt: '' },
    ]
    for (const record of malformed) expect(published.safeParse({ ...plain, holdfastCredentials: record }).success, JSON.stringify(record)).toBe(false)
  })
})
