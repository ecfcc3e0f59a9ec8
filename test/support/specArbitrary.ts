// Spec-valid messages, generated from the OFREP spec files themselves (test/fixtures/ofrep/):
// a fast-check arbitrary for any schema they name. Hand-written examples only hold what their author
// thought of; a vendor once shipped a validator that refused requests omitting an empty optional
// field, which no example of theirs omitted. So every instance here varies what the schema leaves
// open: optional fields present and absent, empty strings, objects and arrays where allowed,
// unknown extra properties where `additionalProperties` allows them (JSON Schema's default), and
// every branch of every oneOf/anyOf.
//
// The subset of OpenAPI 3.1 / JSON Schema the files use, and no more: $ref (within a file and to
// another file of the set), type, properties, required, additionalProperties, allOf, oneOf, anyOf,
// `not: { required }`, enum, items, minimum, pattern, formats uri / date-time / float, and
// contentMediaType application/json with contentSchema (a string holding JSON). Any other
// constraint keyword throws, so a newer spec cannot be generated from wrongly without a word.
//
// oneOf is generated as a choice of its branches; exclusivity is not checked. The OFREP schema's
// own branches overlap (codeDefaultFlag, `properties: {}`, matches every evaluationSuccess), which
// is why CONTRACT §2.1 says to parse tolerantly: taken literally, its own examples are invalid.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { parse } from 'yaml'

type Schema = { [keyword: string]: any } | boolean

/** The spec files, as copied into the repo (see test/fixtures/ofrep/SOURCES.md). A path: under jsdom a URL object is not Node's. */
export const OFREP_DIR = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/ofrep')

const CONSTRAINTS = new Set(['$ref', 'type', 'properties', 'required', 'additionalProperties', 'allOf', 'oneOf', 'anyOf', 'not', 'enum', 'items', 'minimum', 'pattern', 'format', 'contentMediaType', 'contentSchema'])
const ANNOTATIONS = new Set(['description', 'example', 'examples', 'default', 'title', 'summary', 'deprecated'])

/** Options of {@link loadSpec}. */
export interface SpecOptions {
  /** Largest array and number of extra properties generated. Default 3. */
  maxItems?: number
}

/** A loaded set of spec files and the arbitraries for the schemas they hold. */
export interface Spec {
  /** An arbitrary of valid instances of `ref` (`'#/components/schemas/x'` in the first file, or `'file.yaml#/…'`), as JSON carries them. */
  arbitrary(ref: string): fc.Arbitrary<unknown>
  /** The schema at `ref` (refs inside it unresolved). */
  schema(ref: string): Schema
  /** Every property name the files define: extra properties never take one (see `extraKey`). */
  knownNames: ReadonlySet<string>
}

/** Loads `files` (the first is the default for a bare `#/…` ref) from `dir`. */
export function loadSpec(files: string[], dir: string = OFREP_DIR, options: SpecOptions = {}): Spec {
  const docs = new Map<string, unknown>(files.map((file) => [file, parse(readFileSync(join(dir, file), 'utf8'))]))
  const maxItems = options.maxItems ?? 3
  const knownNames = new Set<string>()
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk)
    else if (node && typeof node === 'object') {
      const props = (node as { properties?: unknown }).properties
      if (props && typeof props === 'object') for (const name of Object.keys(props)) knownNames.add(name)
      Object.values(node).forEach(walk)
    }
  }
  docs.forEach(walk)

  // A schema is always read with the file it came from, so its own `#/…` refs resolve there.
  type At = { schema: Schema; file: string }
  const resolve = (ref: string, file: string): At => {
    const [target, pointer = ''] = ref.split('#')
    const at = target || file
    let node: any = docs.get(at)
    if (node === undefined) throw new Error(`specArbitrary: no file ${at} loaded (for ${ref})`)
    for (const part of pointer.split('/').filter(Boolean)) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')]
    if (node === undefined) throw new Error(`specArbitrary: ${ref} not found`)
    return node.$ref ? resolve(node.$ref, at) : { schema: node, file: at }
  }
  const deref = (at: At): At => (typeof at.schema === 'object' && at.schema.$ref ? resolve(at.schema.$ref, at.file) : at)

  const check = (schema: Schema) => {
    if (typeof schema !== 'object') return
    for (const keyword of Object.keys(schema)) {
      if (!CONSTRAINTS.has(keyword) && !ANNOTATIONS.has(keyword)) throw new Error(`specArbitrary: keyword ${keyword} is not supported`)
    }
    if (schema.not && Object.keys(schema.not).some((k) => k !== 'required')) throw new Error('specArbitrary: only `not: { required }` is supported')
  }
  const constrains = (schema: Schema) => schema === false || (typeof schema === 'object' && Object.keys(schema).some((k) => CONSTRAINTS.has(k)))

  // Extra property names: short strings, never a name the spec defines anywhere (an unknown
  // `errorCode` beside a success would be valid JSON Schema and change what the entry means).
  // Strings are ASCII, or any code point, or with lone surrogates among them (JSON carries them as
  // `"\uD800"`, and JSON.parse gives them back).
  const lone = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)))
  const text = (maxLength: number) => fc.oneof(fc.string({ maxLength }), fc.string({ maxLength, unit: 'binary' }), fc.string({ maxLength, unit: lone }))
  const extraKey = text(8).filter((k) => !knownNames.has(k))
  // Any JSON, and "" as often as an optional string of the spec's own (see `emptyOr`): JSON's own
  // strings are empty once in a few hundred, so a context attribute (`additionalProperties: true`)
  // was "" in under 1% of requests, and a server refusing one went unseen in half the runs.
  const anyJson = fc.oneof(
    { weight: 1, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: lone }) },
  )
  const emptyOr = (arb: fc.Arbitrary<string>) => fc.oneof({ weight: 1, arbitrary: fc.constant('') }, { weight: 4, arbitrary: arb })

  /** An object schema flattened: allOf merged, each oneOf/anyOf branch a shape of its own. */
  interface Shape {
    properties: Map<string, At[]>
    required: Set<string>
    forbidden: Set<string>
    additional: At[] | boolean
  }
  const isObjectLike = (s: Schema) => typeof s === 'object' && (s.type === 'object' || s.properties !== undefined || s.additionalProperties !== undefined || (s.required !== undefined && s.type === undefined))
  const shapes = (input: At): Shape[] => {
    const at = deref(input)
    const s = at.schema
    if (typeof s !== 'object') return [{ properties: new Map(), required: new Set(), forbidden: new Set(), additional: s }]
    check(s)
    const own: Shape = {
      properties: new Map(Object.entries(s.properties ?? {}).map(([name, sub]) => [name, [{ schema: sub as Schema, file: at.file }]])),
      required: new Set(s.required ?? []),
      forbidden: new Set(s.not?.required ?? []),
      additional: s.additionalProperties === undefined ? true : typeof s.additionalProperties === 'boolean' ? s.additionalProperties : [{ schema: s.additionalProperties, file: at.file }],
    }
    let result = [own]
    for (const part of s.allOf ?? []) result = cross(result, shapes({ schema: part, file: at.file }))
    const branches = s.oneOf ?? s.anyOf
    if (branches) result = cross(result, branches.flatMap((b: Schema) => shapes({ schema: b, file: at.file })))
    return result
  }
  const cross = (as: Shape[], bs: Shape[]) => as.flatMap((a) => bs.map((b) => merge(a, b)))
  const merge = (a: Shape, b: Shape): Shape => {
    const properties = new Map(a.properties)
    for (const [name, list] of b.properties) properties.set(name, [...(properties.get(name) ?? []), ...list])
    const additional = a.additional === false || b.additional === false ? false : a.additional === true ? b.additional : b.additional === true ? a.additional : [...a.additional, ...b.additional]
    return { properties, required: new Set([...a.required, ...b.required]), forbidden: new Set([...a.forbidden, ...b.forbidden]), additional }
  }

  const objectArb = (shape: Shape): fc.Arbitrary<Record<string, unknown>> => {
    for (const name of shape.required) if (shape.forbidden.has(name)) throw new Error(`specArbitrary: ${name} is both required and forbidden`)
    const names = [...shape.properties.keys()].filter((name) => !shape.forbidden.has(name))
    const model: Record<string, fc.Arbitrary<unknown>> = {}
    for (const name of names) model[name] = allOf(shape.properties.get(name)!)
    // A required name without a property schema takes any JSON.
    for (const name of shape.required) if (!(name in model)) model[name] = anyJson
    const known = fc.record(model, { requiredKeys: [...shape.required] })
    if (shape.additional === false) return known
    const taken = new Set([...names, ...shape.forbidden, ...shape.required])
    const extra =
      shape.additional === true
        ? fc.dictionary(extraKey.filter((k) => !taken.has(k)), anyJson, { maxKeys: maxItems })
        : fc.dictionary(text(8).filter((k) => !taken.has(k)), allOf(shape.additional), { maxKeys: maxItems })
    return fc.tuple(extra, known).map(([more, own]) => ({ ...more, ...own }))
  }

  // Several schemas that must all hold: only one may constrain (the others annotate), unless all are objects.
  const allOf = (list: At[]): fc.Arbitrary<unknown> => {
    const real = list.filter((at) => constrains(deref(at).schema))
    if (real.length === 0) return anyJson
    if (real.length === 1) return arb(real[0])
    if (real.every((at) => isObjectLike(deref(at).schema))) return fc.oneof(...real.map((at) => shapes(at)).reduce(cross).map(objectArb))
    throw new Error('specArbitrary: allOf of several non-object schemas is not supported')
  }

  const arb = (input: At): fc.Arbitrary<unknown> => {
    const at = deref(input)
    const s = at.schema
    if (s === true) return anyJson
    if (s === false) throw new Error('specArbitrary: a `false` schema has no instances')
    check(s)
    if (s.enum) return fc.constantFrom(...(s.enum as unknown[]))
    if (isObjectLike(s) || s.allOf?.some((p: Schema) => isObjectLike(deref({ schema: p, file: at.file }).schema))) return fc.oneof(...shapes(at).map(objectArb))
    if (s.allOf) return allOf(s.allOf.map((p: Schema) => ({ schema: p, file: at.file })))
    const branches = s.oneOf ?? s.anyOf
    if (branches) return fc.oneof(...branches.map((b: Schema) => arb({ schema: b, file: at.file })))
    switch (s.type) {
      case undefined:
        return anyJson
      case 'string':
        if (s.contentSchema) {
          if (s.contentMediaType !== 'application/json') throw new Error(`specArbitrary: contentMediaType ${s.contentMediaType}`)
          return arb({ schema: s.contentSchema, file: at.file }).map((v) => JSON.stringify(v))
        }
        if (s.format === 'uri') return fc.webUrl({ withQueryParameters: true, withFragments: true })
        if (s.format === 'date-time') return fc.date({ min: new Date(0), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString())
        if (s.format !== undefined) throw new Error(`specArbitrary: string format ${s.format}`)
        if (s.pattern) return fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length <= 40)
        return emptyOr(text(12))
      case 'boolean':
        return fc.boolean()
      case 'integer':
        return fc.oneof(fc.integer({ min: s.minimum ?? -(2 ** 31) }), fc.maxSafeInteger().filter((n) => n >= (s.minimum ?? -Infinity)))
      case 'number':
        return fc.double({ noNaN: true, noDefaultInfinity: true, min: s.minimum }).map((n) => (Object.is(n, -0) ? 0 : n))
      case 'array':
        return fc.array(s.items === undefined ? anyJson : arb({ schema: s.items, file: at.file }), { maxLength: maxItems })
      default:
        throw new Error(`specArbitrary: type ${JSON.stringify(s.type)} is not supported`)
    }
  }

  const first = files[0]
  return {
    // As the wire has it: through JSON (a -0 deep in fc.jsonValue is 0 once sent).
    arbitrary: (ref) => arb(resolveRef(ref)).map((v) => JSON.parse(JSON.stringify(v)) as unknown),
    schema: (ref) => resolveRef(ref).schema,
    knownNames,
  }
  function resolveRef(ref: string): At {
    return resolve(ref, first)
  }
}

/** OFREP 0.3.0: openapi.yaml and event-streams.yaml, as the repo carries them. */
export function loadOfrep(options?: SpecOptions): Spec {
  return loadSpec(['openapi.yaml', 'event-streams.yaml'], OFREP_DIR, options)
}

/** A spec-valid bulk answer as an upstream sends it: the body and the ETag it may carry. */
export interface BulkAnswer {
  body: { flags: Array<Record<string, any>>; metadata?: Record<string, unknown>; eventStreams?: unknown[] }
  etag?: string
}

/**
 * Bulk answers (bulkEvaluationSuccess) with `FLAG_NOT_FOUND` entries (flagNotFound) mixed in, as
 * the spec's own bulk example has them and CONTRACT §2.1 allows, and an `ETag` or none (header-safe
 * ASCII). Keys are made unique, the first entry of a key kept: which of two entries of one key
 * wins is pinned nowhere, so a property could only assert one guess.
 */
export function bulkAnswers(spec: Spec): fc.Arbitrary<BulkAnswer> {
  const notFound = fc.array(spec.arbitrary('#/components/schemas/flagNotFound') as fc.Arbitrary<Record<string, any>>, { maxLength: 1 })
  const etag = fc.option(fc.string({ minLength: 1, maxLength: 16 }).filter((s) => /^[\x21-\x7e]+$/.test(s)), { nil: undefined })
  return fc.tuple(spec.arbitrary('#/components/schemas/bulkEvaluationSuccess') as fc.Arbitrary<BulkAnswer['body']>, notFound, fc.nat(), etag).map(([body, missing, at, etag]) => {
    const flags = [...body.flags]
    if (missing.length > 0) flags.splice(at % (flags.length + 1), 0, ...missing)
    const seen = new Set<string>()
    const unique = flags.filter((entry) => !seen.has(entry.key) && (seen.add(entry.key), true))
    return etag === undefined ? { body: { ...body, flags: unique } } : { body: { ...body, flags: unique }, etag }
  })
}
