// CONTRACT §4 (last known good, merged per flag), §5 (precedence of bootstrap / cache / fallback /
// network) and §9 (a relay's `metadata.holdfast`) as properties of the pure flag-sync state machine,
// over arbitrary sequences of answers: fresh and stale, with and without `fetchedAt`, clean and
// partial (per-flag errors, FLAG_NOT_FOUND), empty, failures, 304s, and a cache read landing late.
// What is checked is what a user would see through getDetails / getStatus.
import { describe, expect, test } from 'vitest'
import fc from 'fast-check'
import { HoldfastError } from '../../packages/core/src/platform/errors'
import { deriveStatus, initialState, reduce, type SyncState } from '../../packages/core/src/flags/syncState'
import { markStale, sameContent, type FlagMap, type HeldFlag } from '../../packages/core/src/flags/merge'
import { safeContextHash } from '../../packages/core/src/platform/hash'
import type { FetchResult } from '../../packages/core/src/protocol/fetchFlags'
import type { CacheRecord } from '../../packages/core/src/protocol/readers'
import type { FlagEntry, JsonValue } from '../../packages/core/src/types'

const DAY = 864e5
// The real hash of the context: a bootstrap's ETag (and its time, heldAt) is taken only for it.
const H = safeContextHash({ targetingKey: 'alice' })!
const T0 = 1_800_000_000_000
const KEYS = ['kill', 'banner', 'limit', '__proto__']

const entry: fc.Arbitrary<FlagEntry> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ key: fc.constantFrom(...KEYS), value: fc.constantFrom<unknown>(true, false, 'a', 'b', 1, { x: 1 }) }) as fc.Arbitrary<FlagEntry> },
  { weight: 1, arbitrary: fc.record({ key: fc.constantFrom(...KEYS), errorCode: fc.constantFrom('FLAG_NOT_FOUND', 'GENERAL', 'PARSE_ERROR') }) },
  { weight: 1, arbitrary: fc.record({ key: fc.constantFrom(...KEYS), value: fc.constant('kept'), reason: fc.constant('STALE') }) as fc.Arbitrary<FlagEntry> },
)

/** One thing that happens: an answer (its `fetchedAt` relative to now, in ms), a failure, a 304, or the cache read landing. */
type Step =
  | { kind: 'ok'; entries: FlagEntry[]; stale?: boolean; fetchedAgo?: number; etag?: string; dt: number }
  | { kind: 'error'; code: 'HTTP' | 'NETWORK' | 'INVALID_RESPONSE' | 'EMPTY_RESPONSE'; dt: number }
  | { kind: 'not-modified'; dt: number }
  | { kind: 'cache'; entries: FlagEntry[]; savedAgo: number; heldAgo?: number; dt: number }

const dt = fc.integer({ min: 0, max: DAY })
const ago = fc.integer({ min: -2 * 3600_000, max: 3 * DAY })
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      {
        kind: fc.constant('ok' as const),
        entries: fc.uniqueArray(entry, { selector: (e) => e.key, maxLength: 4 }),
        stale: fc.boolean(),
        fetchedAgo: ago,
        etag: fc.constantFrom('"e1"', '"e2"'),
        dt,
      },
      { requiredKeys: ['kind', 'entries', 'dt'] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('error' as const), code: fc.constantFrom('HTTP' as const, 'NETWORK' as const, 'INVALID_RESPONSE' as const), dt }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('not-modified' as const), dt }) },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        kind: fc.constant('cache' as const),
        entries: fc.uniqueArray(entry, { selector: (e) => e.key, maxLength: 4 }),
        savedAgo: ago,
        heldAgo: ago,
        dt,
      },
      { requiredKeys: ['kind', 'entries', 'savedAgo', 'dt'] },
    ),
  },
)

const fallbackFlags = fc.uniqueArray(fc.record({ key: fc.constantFrom(...KEYS), value: fc.constantFrom<unknown>('fb', false) }) as fc.Arbitrary<FlagEntry>, { selector: (e) => e.key, maxLength: 3 })
const bootstrapOf = fc.option(fc.record({ flags: fc.uniqueArray(entry, { selector: (e) => e.key, maxLength: 3 }), ago, stale: fc.boolean(), etag: fc.boolean() }), { nil: undefined })

function toResult(s: Step, now: number, held?: string): FetchResult {
  switch (s.kind) {
    case 'ok': {
      const upstream = s.fetchedAgo === undefined && s.stale === undefined ? undefined : { fetchedAt: s.fetchedAgo === undefined ? undefined : now - s.fetchedAgo, stale: s.stale }
      return { kind: 'ok', entries: s.entries, skipped: 0, etag: s.etag, upstream }
    }
    case 'error':
      return { kind: 'error', error: new HoldfastError(s.code, 'failed') }
    default:
      // The request named the ETag held (request and answer are one step here).
      return { kind: 'not-modified', etag: held }
  }
}

const content = (f: HeldFlag | undefined) => (f ? JSON.stringify([f.value, f.variant, f.reason, f.metadata]) : undefined)
const own = (s: SyncState) => new Map([...s.flags].filter(([, f]) => f.source !== 'fallback'))

/**
 * Runs the steps against the reducer; calls `check(before, after, step, now)` after each. Also keeps
 * `vouched`: per key, the time the values held were last vouched for by an answer the client applied
 * (a fresh answer's time, or a stale one's fetchedAt), which is what "the client knows is older" means.
 */
function run(
  steps: Step[],
  init: { fallback: FlagEntry[]; bootstrap?: { flags: FlagEntry[]; ago: number; stale: boolean; etag?: boolean } },
  check: (ctx: { before: SyncState; after: SyncState; step: Step; now: number; vouched: Map<string, number> }) => void,
) {
  let now = T0
  let s = initialState({
    context: { targetingKey: 'alice' },
    contextHash: H,
    fallback: init.fallback.length ? { bootstrap: { context: { targetingKey: 'x' }, flags: init.fallback, fetchedAt: 0 } } : undefined,
    bootstrap: init.bootstrap && { bootstrap: { context: { targetingKey: 'alice' }, flags: init.bootstrap.flags, fetchedAt: T0 - init.bootstrap.ago, stale: init.bootstrap.stale, ...(init.bootstrap.etag ? { etag: '"b"' } : {}) }, skipped: 0 },
    now,
  })
  const vouched = new Map<string, number>()
  // A bootstrap is an answer for this context, rendered at its fetchedAt (believed up to a day ahead
  // of this device): neither a cache entry of the same content dated earlier nor a 304 to its ETag
  // (which caps times by this device's clock) makes what it vouched for older.
  if (init.bootstrap) for (const [key, flag] of s.flags) if (flag.source === 'bootstrap') vouched.set(key, T0 - init.bootstrap.ago)
  for (const st of steps) {
    now += st.dt
    const before = s
    if (st.kind === 'cache') {
      const record: CacheRecord = { v: 1, flags: st.entries.filter((e) => e.errorCode === undefined), savedAt: now - st.savedAgo, contextHash: H }
      if (st.heldAgo !== undefined) record.heldAt = now - st.heldAgo
      s = reduce(s, { type: 'cache', contextHash: H, record, now })
    } else {
      s = reduce(s, { type: 'request' })
      s = reduce(s, { type: 'answer', generation: s.generation, contextHash: H, result: toResult(st, now, s.etag?.value), now })
    }
    check({ before, after: s, step: st, now, vouched })
    if (st.kind === 'ok' && s.outcome === 'success') {
      const fetchedAt = st.fetchedAgo === undefined ? undefined : now - st.fetchedAgo
      const at = Math.min(fetchedAt ?? now, now)
      for (const e of st.entries) {
        if (e.errorCode !== undefined) continue
        const a = before.flags.get(e.key)
        const b = s.flags.get(e.key)
        if (!b || b.source !== 'network' || !sameContent(b, e)) continue
        if (!st.stale) vouched.set(e.key, at)
        else if (fetchedAt !== undefined && (content(a) !== content(b) || a?.source === 'fallback')) vouched.set(e.key, at)
        else if (fetchedAt !== undefined) vouched.set(e.key, Math.max(vouched.get(e.key) ?? 0, at))
      }
      for (const key of [...vouched.keys()]) if (!s.flags.has(key)) vouched.delete(key)
    }
  }
}

const sequences = fc.record({ steps: fc.array(step, { maxLength: 14 }), fallback: fallbackFlags, bootstrap: bootstrapOf })

/** A stale answer the client knows is older (by `updatedAt`, or a later answer that vouched for the flag) leaves every held flag as it was, marked stale. */
const olderStaleKeeps: Parameters<typeof run>[2] = ({ before, after, step, now, vouched }) => {
  if (step.kind !== 'ok' || !step.stale || step.fetchedAgo === undefined) return
  const fetchedAt = now - step.fetchedAgo
  for (const [key, flag] of own(before)) {
    const known = Math.max(flag.updatedAt ?? 0, vouched.get(key) ?? 0)
    if (fetchedAt >= known) continue
    const kept = after.flags.get(key)
    expect(kept, `${key} dropped by an older stale answer`).toBeDefined()
    expect(content(kept), `${key} replaced by an older stale answer`).toBe(content(flag))
    expect(kept!.updatedAt).toBe(flag.updatedAt)
    expect(kept!.stale).toBe(true)
  }
}

describe('§4/§9 over arbitrary sequences of answers', () => {
  test('a value is never replaced by one from a stale answer the client knows is older, and never dropped by it', () => {
    fc.assert(
      fc.property(sequences, ({ steps, fallback, bootstrap }) => run(steps, { fallback, bootstrap }, olderStaleKeeps)),
      { numRuns: 1000 },
    )
  })

  // Sequences the property found, kept as examples (fast-check's shrunk counterexamples).
  test.each<[string, Step[], { flags: FlagEntry[]; ago: number; stale: boolean; etag?: boolean }?]>([
    [
      // The cache read lands after the first answer (refresh() before start() read it) and dates the
      // same value earlier; it also made the client forget that the answer had vouched for it just now.
      'a cache read landing after an answer',
      [
        { kind: 'ok', entries: [{ key: 'kill', value: true }], dt: 0 },
        { kind: 'cache', entries: [{ key: 'kill', value: true }], savedAgo: 1, dt: 0 },
        { kind: 'ok', entries: [{ key: 'kill', value: false }], stale: true, fetchedAgo: 1, dt: 0 },
      ],
    ],
    [
      // A fresh answer dated earlier (a relay in front of a relay keeps the older time), partial: it
      // says nothing of `limit`, which the answer before had confirmed later than that.
      'a fresh partial answer dated earlier than the one before',
      [
        { kind: 'ok', entries: [{ key: 'limit', value: 1 }], dt: 0 },
        { kind: 'ok', entries: [{ key: 'limit', value: 1 }], dt: 10 },
        { kind: 'ok', entries: [{ key: 'kill', errorCode: 'GENERAL' }], fetchedAgo: 10, dt: 0 },
        { kind: 'ok', entries: [{ key: 'kill', value: true }], stale: true, fetchedAgo: 5, dt: 0 },
      ],
    ],
    [
      // A bootstrap rendered now, and the cache read lands with the same value saved a moment
      // before (dated earlier, as first received): then a relay answers stale with what it fetched
      // between the two. The bootstrap vouched for the kill switch later than that.
      'a bootstrap, then a cache entry of the same content saved before it',
      [
        { kind: 'cache', entries: [{ key: 'kill', value: true }], savedAgo: 60_000, dt: 0 },
        { kind: 'ok', entries: [{ key: 'kill', value: false }], stale: true, fetchedAgo: 30_000, dt: 0 },
      ],
      { flags: [{ key: 'kill', value: true }], ago: 0, stale: false },
    ],
    [
      // The same with its ETag confirmed by a 304, on a device 3 hours behind the relay.
      'a bootstrap dated ahead, confirmed by a 304',
      [
        { kind: 'not-modified', dt: 0 },
        { kind: 'ok', entries: [{ key: 'kill', value: false }], stale: true, fetchedAgo: -2 * 3600_000, dt: 0 },
      ],
      { flags: [{ key: 'kill', value: true }], ago: -3 * 3600_000, stale: false, etag: true },
    ],
  ])('example: %s', (_name, steps, bootstrap?: { flags: FlagEntry[]; ago: number; stale: boolean; etag?: boolean }) => {
    let checked = 0
    run(steps, { fallback: [], bootstrap }, (ctx) => {
      olderStaleKeeps(ctx)
      if (ctx.step.kind === 'ok' && ctx.step.stale) checked++
    })
    expect(checked).toBe(1)
  })

  test('no failure of any kind removes or changes a held value; every flag is stale after it', () => {
    fc.assert(
      fc.property(sequences, ({ steps, fallback, bootstrap }) => {
        run(steps, { fallback, bootstrap }, ({ before, after, step }) => {
          if (step.kind !== 'error') return
          const mine = before.own ? before.flags : before.fallback
          expect([...after.flags.keys()].sort()).toEqual([...mine.keys()].sort())
          for (const [key, flag] of mine) expect(content(after.flags.get(key))).toBe(content(flag))
          for (const flag of after.flags.values()) expect(flag.stale).toBe(true)
          expect(deriveStatus(after, 'memory').state).toMatch(/^(stale|error)$/)
        })
      }),
      { numRuns: 300 },
    )
  })

  test('a partial answer keeps every flag it does not remove by FLAG_NOT_FOUND; a clean empty answer while flags are held changes nothing', () => {
    fc.assert(
      fc.property(sequences, ({ steps, fallback, bootstrap }) => {
        run(steps, { fallback, bootstrap }, ({ before, after, step }) => {
          if (step.kind !== 'ok') return
          const mine = own(before)
          const clean = step.entries.every((e) => e.errorCode === undefined)
          if (clean && step.entries.length === 0 && before.flags.size > 0) {
            expect([...after.flags.keys()]).toEqual([...before.flags.keys()])
            for (const [key, flag] of before.flags) expect(content(after.flags.get(key))).toBe(content(flag))
            expect(deriveStatus(after, 'memory').error?.code).toBe('EMPTY_RESPONSE')
            return
          }
          if (clean) return
          for (const [key, flag] of mine) {
            const e = step.entries.find((x) => x.key === key)
            if (e?.errorCode === 'FLAG_NOT_FOUND') continue
            expect(after.flags.has(key), `${key} lost by a partial answer`).toBe(true)
            if (!e || e.errorCode !== undefined) expect(content(after.flags.get(key))).toBe(content(flag))
          }
        })
      }),
      { numRuns: 300 },
    )
  })

  test('updatedAt: an identical re-confirmation never moves it forward; a stale answer never moves it back; applied content is dated no later than fetchedAt', () => {
    fc.assert(
      fc.property(sequences, ({ steps, fallback, bootstrap }) => {
        run(steps, { fallback, bootstrap }, ({ before, after, step, now }) => {
          for (const [key, flag] of after.flags) {
            const prev = before.flags.get(key)
            if (flag.source === 'fallback' || !prev || prev.source === 'fallback' || content(prev) !== content(flag)) continue
            if (prev.updatedAt === undefined) continue
            expect(flag.updatedAt!, `${key} moved forward by a re-confirmation`).toBeLessThanOrEqual(prev.updatedAt)
            // A time later than now (a bootstrap dated by a server clock ahead) is capped at now by any
            // answer that confirms the content, as by a 304; any other time a stale answer leaves as it was.
            if (step.kind === 'ok' && step.stale) expect([prev.updatedAt, Math.min(prev.updatedAt, now)], `${key} moved back by a stale answer`).toContain(flag.updatedAt)
          }
          if (step.kind !== 'ok' || step.fetchedAgo === undefined) return
          for (const e of step.entries) {
            const flag = after.flags.get(e.key)
            const prev = before.flags.get(e.key)
            if (e.errorCode !== undefined || !flag || flag.source !== 'network' || (prev && content(prev) === content(flag))) continue
            expect(flag.updatedAt!).toBeLessThanOrEqual(now - step.fetchedAgo)
          }
        })
      }),
      { numRuns: 300 },
    )
  })
})

describe('§5 precedence over arbitrary sequences', () => {
  test('a network value is never replaced by the cache; fallback values go with the first success and never beat anything', () => {
    fc.assert(
      fc.property(sequences, ({ steps, fallback, bootstrap }) => {
        let succeeded = false
        run(steps, { fallback, bootstrap }, ({ before, after, step }) => {
          // A per-flag error with no value holds none: after a partial answer the cache fills it in (§4, §5).
          if (step.kind === 'cache')
            for (const [key, flag] of before.flags) if (flag.source === 'network' && flag.value !== undefined) expect(content(after.flags.get(key)), `${key}: cache over network`).toBe(content(flag))
          succeeded ||= after.outcome === 'success'
          if (succeeded) for (const flag of after.flags.values()) expect(flag.source).not.toBe('fallback')
          for (const [key, flag] of after.flags) if (flag.source === 'fallback') expect(own(before).has(key) && before.own).toBe(false)
          const status = deriveStatus(after, 'memory')
          if (step.kind === 'ok' && after.outcome === 'success') expect(status.state).toBe(step.stale ? 'stale' : 'ready')
          if (step.kind === 'not-modified' && after.outcome === 'success')
            for (const [key, flag] of after.flags) expect(content(flag)).toBe(content(before.flags.get(key)))
        })
      }),
      { numRuns: 300 },
    )
  })
})

describe('§5 user switches over arbitrary sequences', () => {
  type Act = { kind: 'switch'; user: 'alice' | 'bob' | 'carol'; plan: boolean; cached: boolean } | Step
  const act: fc.Arbitrary<Act> = fc.oneof(
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('switch' as const), user: fc.constantFrom('alice' as const, 'bob' as const, 'carol' as const), plan: fc.boolean(), cached: fc.boolean() }) },
    { weight: 3, arbitrary: step },
  )
  /** Values carry their user, so a value shown can be traced to whose it is. */
  const tag = (user: string, entries: FlagEntry[]) => entries.map((e) => (e.errorCode === undefined ? { ...e, value: `${user}:${JSON.stringify(e.value)}` } : e))

  test("once an attempt for a user has finished, no value of another user is held, and none claims to be theirs", () => {
    fc.assert(
      fc.property(fc.array(act, { maxLength: 16 }), fallbackFlags, (acts, fallback) => {
        let now = T0
        let user = 'alice'
        let hash = 'alice'
        let s = initialState({
          context: { targetingKey: user },
          contextHash: hash,
          fallback: fallback.length ? { bootstrap: { context: { targetingKey: 'x' }, flags: tag('fallback', fallback), fetchedAt: 0 } } : undefined,
          now,
        })
        let finished = false
        for (const a of acts) {
          now += 'dt' in a ? a.dt : 0
          if (a.kind === 'switch') {
            const next = a.user + (a.plan ? '+pro' : '')
            if (next === hash) continue
            const cached: CacheRecord | undefined = a.cached ? { v: 1, flags: tag(a.user, [{ key: 'kill', value: true }]), savedAt: now - 1000, contextHash: next } : undefined
            if (a.user !== user) finished = false
            user = a.user
            hash = next
            s = reduce(s, { type: 'switch', context: { targetingKey: user, plan: a.plan }, contextHash: hash, cached, now })
          } else if (a.kind === 'cache') {
            s = reduce(s, { type: 'cache', contextHash: hash, record: { v: 1, flags: tag(user, a.entries.filter((e) => e.errorCode === undefined)), savedAt: now - a.savedAgo, contextHash: hash }, now })
          } else {
            const result = toResult(a, now, s.etag?.value)
            s = reduce(s, { type: 'request' })
            s = reduce(s, { type: 'answer', generation: s.generation, contextHash: hash, result: result.kind === 'ok' ? { ...result, entries: tag(user, result.entries) } : result, now })
            finished = true
          }
          if (!finished) continue
          for (const flag of s.flags.values()) {
            if (flag.value === undefined) continue
            const owner = String(flag.value).split(':')[0]
            expect(owner === user || (owner === 'fallback' && flag.source === 'fallback'), `${flag.key} = ${String(flag.value)} shown to ${user}`).toBe(true)
          }
        }
      }),
      { numRuns: 300 },
    )
  })
})

// markStale() was rewritten (3958c89) and now keeps stand-ins that are already so: against the loop
// it replaced (616b4ca, without `standIn`) and the relabel it gained (bc18263), for any held map.
test('markStale() gives what the loop it replaced gave, and keeps every flag already as asked', () => {
  const held: fc.Arbitrary<HeldFlag> = fc.record({
    key: fc.constantFrom(...KEYS),
    value: fc.constantFrom<JsonValue>(true, 'a', 1),
    source: fc.constantFrom('network', 'cache', 'bootstrap', 'fallback'),
    stale: fc.boolean(),
    updatedAt: fc.constantFrom(undefined, T0),
  }) as fc.Arbitrary<HeldFlag>
  // 616b4ca's markStale, given the relabel of bc18263.
  const before = (map: FlagMap, standIn?: 'fallback') => {
    let changed = false
    const next = new Map<string, HeldFlag>()
    for (const [key, flag] of map) {
      const marked = flag.stale && !standIn ? flag : { ...flag, stale: true, source: standIn || flag.source }
      changed ||= marked !== flag
      next.set(key, marked)
    }
    return changed ? next : map
  }
  fc.assert(
    fc.property(fc.array(held), fc.constantFrom(undefined, 'fallback' as const), (flags, standIn) => {
      const map: FlagMap = new Map(flags.map((f) => [f.key, f]))
      const now = markStale(map, standIn)
      const then = before(map, standIn)
      expect([...now]).toEqual([...then])
      // The same objects where nothing changes (listeners hear nothing, readers keep their details).
      for (const [key, flag] of map) expect(now.get(key) === flag).toBe(flag.stale && (!standIn || flag.source === standIn))
      expect(now === map).toBe([...map.values()].every((f) => f.stale && (!standIn || f.source === standIn)))
      if (!standIn) expect(now === map).toBe(then === map)
    }),
  )
})
