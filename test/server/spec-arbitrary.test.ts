// The generator the spec-driven tests stand on (test/support/specArbitrary.ts): what it makes must
// be valid, and must vary everything the schema leaves open, or the properties built on it prove
// less than they say.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { loadOfrep, loadSpec } from '../support/specArbitrary'

const spec = loadOfrep()
const sample = (name: string, numRuns = 600) => fc.sample(spec.arbitrary(`#/components/schemas/${name}`), { numRuns, seed: 42 }) as Array<Record<string, any>>
const kindOf = (v: unknown) => (v === undefined ? 'absent' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'float') : typeof v)

describe('specArbitrary on OFREP 0.3.0', () => {
  it('makes every branch of evaluationSuccess (each value type, and the code default with no value)', () => {
    const entries = sample('serverEvaluationSuccess')
    expect(new Set(entries.map((e) => kindOf(e.value)))).toEqual(new Set(['boolean', 'string', 'integer', 'float', 'object', 'absent']))
    for (const e of entries) {
      expect(typeof e.key).toBe('string')
      expect(['STATIC', 'TARGETING_MATCH', 'SPLIT', 'DISABLED', 'UNKNOWN']).toContain(e.reason)
      // objectFlag: an object, never an array or null.
      if (typeof e.value === 'object') expect(e.value !== null && !Array.isArray(e.value)).toBe(true)
    }
    expect(new Set(entries.map((e) => e.reason)).size).toBe(5)
  })

  it('leaves optional fields out and puts them in, and writes them empty where the schema allows', () => {
    const entries = sample('serverEvaluationSuccess')
    for (const field of ['variant', 'metadata']) {
      expect(entries.some((e) => field in e)).toBe(true)
      expect(entries.some((e) => !(field in e))).toBe(true)
    }
    expect(entries.some((e) => e.variant === '')).toBe(true)
    expect(entries.some((e) => e.key === '')).toBe(true)
    expect(entries.some((e) => e.metadata && Object.keys(e.metadata).length === 0)).toBe(true)
    // Flag metadata values are strings, numbers and booleans only (the schema's additionalProperties).
    for (const e of entries) for (const v of Object.values(e.metadata ?? {})) expect(['string', 'number', 'boolean']).toContain(typeof v)
    const bulk = sample('bulkEvaluationSuccess', 300)
    expect(bulk.some((b) => b.flags.length === 0)).toBe(true)
    expect(bulk.some((b) => !('metadata' in b) && !('eventStreams' in b))).toBe(true)
    expect(bulk.some((b) => Array.isArray(b.eventStreams) && b.eventStreams.length === 0)).toBe(true)
  })

  it('adds unknown extra properties where additionalProperties allows them, never under a name the spec defines', () => {
    const entries = sample('serverEvaluationSuccess')
    const extras = entries.flatMap((e) => Object.keys(e).filter((k) => !['key', 'reason', 'variant', 'metadata', 'value'].includes(k)))
    expect(extras.length).toBeGreaterThan(0)
    for (const name of extras) expect(spec.knownNames.has(name)).toBe(false)
    const contexts = sample('evaluationRequest').map((r) => r.context)
    expect(contexts.every((c) => typeof c.targetingKey === 'string')).toBe(true)
    expect(contexts.some((c) => c.targetingKey === '')).toBe(true)
    expect(contexts.some((c) => Object.keys(c).length > 1)).toBe(true)
  })

  it('writes attributes empty as often as optional fields: a context with a "" attribute beside its targetingKey in one of 20 or more', () => {
    // A relay refusing `{"targetingKey": "u", "plan": ""}` must fail spec-requests.test.ts within
    // its 100 runs. JSON's own strings are empty once in a few hundred: such a context came in 0.8%
    // of requests, so that refusal went unseen in about half the properties' runs (SPEC_RUNS=100).
    const contexts = sample('evaluationRequest').map((r) => r.context)
    const withEmpty = contexts.filter((c) => Object.entries(c).some(([name, value]) => name !== 'targetingKey' && value === ''))
    expect(withEmpty.length / contexts.length).toBeGreaterThanOrEqual(0.05)
  })

  it('makes every error code of evaluationFailure, and FLAG_NOT_FOUND from flagNotFound', () => {
    expect(new Set(sample('evaluationFailure').map((e) => e.errorCode))).toEqual(new Set(['PARSE_ERROR', 'TARGETING_KEY_MISSING', 'INVALID_CONTEXT', 'GENERAL']))
    expect(new Set(sample('flagNotFound', 50).map((e) => e.errorCode))).toEqual(new Set(['FLAG_NOT_FOUND']))
  })

  it('gives an eventStream exactly one of url and endpoint (oneOf with not: required), both branches', () => {
    const streams = sample('eventStream')
    for (const s of streams) {
      expect(typeof s.type).toBe('string')
      expect(('url' in s) !== ('endpoint' in s)).toBe(true)
      if (s.url !== undefined) expect(() => new URL(s.url)).not.toThrow()
      if (s.endpoint !== undefined) expect(s.endpoint.requestUri).toMatch(/^\//)
      if (s.inactivityDelaySec !== undefined) expect(Number.isInteger(s.inactivityDelaySec) && s.inactivityDelaySec >= 1).toBe(true)
    }
    expect(streams.some((s) => 'url' in s)).toBe(true)
    expect(streams.some((s) => 'endpoint' in s && !('origin' in s.endpoint))).toBe(true)
    expect(streams.some((s) => 'endpoint' in s && 'origin' in s.endpoint)).toBe(true)
  })

  it('writes an SSE event (event-streams.yaml → sseEvent) whose data is the JSON of sseEventData, lastModified of both kinds', () => {
    const stream = loadSpec(['event-streams.yaml', 'openapi.yaml'])
    const item = stream.schema('#/components/pathItems/eventStreamConnection') as any
    const ref = item.get.responses['200'].content['text/event-stream'].itemSchema.$ref as string
    const events = fc.sample(stream.arbitrary(ref), { numRuns: 400, seed: 7 }) as Array<Record<string, any>>
    const data = events.map((e) => JSON.parse(e.data))
    for (const d of data) expect(typeof d.type).toBe('string')
    expect(data.some((d) => typeof d.lastModified === 'number')).toBe(true)
    expect(data.some((d) => typeof d.lastModified === 'string' && !Number.isNaN(Date.parse(d.lastModified)))).toBe(true)
    expect(data.some((d) => !('etag' in d))).toBe(true)
    expect(events.some((e) => 'retry' in e) && events.some((e) => !('id' in e))).toBe(true)
  })

  it('refuses a keyword it does not know, rather than generate from a schema it misreads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-arbitrary-'))
    writeFileSync(join(dir, 'a.yaml'), 'components:\n  schemas:\n    s:\n      type: string\n      maxLength: 3\n    r:\n      $ref: "#/components/schemas/s"\n')
    const strict = loadSpec(['a.yaml'], dir)
    expect(() => strict.arbitrary('#/components/schemas/r')).toThrow(/maxLength/)
  })
})
