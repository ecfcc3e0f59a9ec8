// --flags-url --redis: whether the store's copy may replace the data-dir or snapshot layer a relay
// serves since its start (flags/layerOrder.ts), and how a follower reads the leader's report
// (flags/upstreamHealth.ts). Pure decisions, tested without Redis, a disk or timers; the
// redis-no-going-back and redis-clock tests run the same cases against a real redis-server.
// Internal to the server package (urlSource.ts uses them).
import { describe, expect, it } from 'vitest'
import { isOlderThanLayer, type LayerOrder } from '../../packages/server/src/flags/layerOrder'
import { followReport, initialHealth, reduceHealth, reportOfHealth } from '../../packages/server/src/flags/upstreamHealth'

const HOUR = 3_600_000
const T = 1_700_000_000_000

function order(over: Partial<LayerOrder> = {}): LayerOrder {
  return { served: { origin: 'data-dir', fetchedAt: T }, servedText: 'layer', layerSince: undefined, vouchedVersion: undefined, health: { state: 'failing' }, now: () => T + 60_000, ...over }
}

describe('isOlderThanLayer', () => {
  it('only a data-dir or snapshot layer is protected, and never from its own text', () => {
    const doc = { body: 'store', version: 1, fetchedAt: T - 1000 }
    expect(isOlderThanLayer(doc, order())).toBe(true)
    expect(isOlderThanLayer(doc, order({ served: { origin: 'snapshot', fetchedAt: T } }))).toBe(true)
    expect(isOlderThanLayer(doc, order({ served: { origin: 'url', fetchedAt: T } }))).toBe(false)
    expect(isOlderThanLayer(doc, order({ served: undefined }))).toBe(false)
    expect(isOlderThanLayer({ ...doc, body: 'layer' }, order())).toBe(false)
  })

  it("where the store's order is known it decides, whatever the clocks say", () => {
    // A leader's clock hours ahead: its copy looks newer by time, but the store had it before the layer.
    const ahead = { body: 'store', version: 4, fetchedAt: T + 5 * HOUR }
    expect(isOlderThanLayer(ahead, order({ layerSince: 4 }))).toBe(true)
    expect(isOlderThanLayer(ahead, order({ layerSince: 3 }))).toBe(false)
    // A leader's clock hours behind: a copy newer in the store's order is taken.
    expect(isOlderThanLayer({ body: 'store', version: 9, fetchedAt: T - 5 * HOUR }, order({ layerSince: 4 }))).toBe(false)
    // The leader's report of a good poll after the layer vouches for the store's copy.
    expect(isOlderThanLayer(ahead, order({ layerSince: 4, vouchedVersion: 5 }))).toBe(false)
    expect(isOlderThanLayer(ahead, order({ layerSince: 4, vouchedVersion: 4 }))).toBe(true)
  })

  it('with no order known, the times decide: a copy fetched in this clock\'s future counts as now', () => {
    expect(isOlderThanLayer({ body: 'store', version: 1, fetchedAt: T }, order())).toBe(true)
    expect(isOlderThanLayer({ body: 'store', version: 1, fetchedAt: T + 1 }, order())).toBe(false)
    // Fetched "later" on a clock hours ahead, but now() is not past the layer: not newer.
    expect(isOlderThanLayer({ body: 'store', version: 1, fetchedAt: T + 5 * HOUR }, order({ now: () => T }))).toBe(true)
    // This relay heard the upstream after the layer was made: the store's copy is current.
    expect(isOlderThanLayer({ body: 'store', version: 1, fetchedAt: T - 1 }, order({ health: { state: 'ok', lastSuccessAt: T + 1 } }))).toBe(false)
    expect(isOlderThanLayer({ body: 'store', version: 1, fetchedAt: T - 1 }, order({ health: { state: 'failing', lastSuccessAt: T + 1 } }))).toBe(true)
  })
})

describe('followReport', () => {
  it("takes the leader's state and times, never in this relay's future, without its counts", () => {
    const mine = reduceHealth(initialHealth(true), { type: 'failure', at: T, error: { kind: 'network', message: 'down' } })
    const report = { state: 'ok' as const, lastSuccessAt: T + HOUR, lastAttemptAt: T + HOUR }
    const next = followReport(mine, report, T + 10)
    expect(next).toMatchObject({ state: 'ok', lastSuccessAt: T + 10, lastAttemptAt: T + 10, refused: 1 })
  })

  it('times a 401/403 streak on this relay\'s clock, from the first report of it', () => {
    const report = { state: 'unauthorized' as const, lastAttemptAt: T - HOUR, lastError: { kind: 'unauthorized', message: '401', httpStatus: 401 } }
    const first = followReport(initialHealth(true), report, T)
    expect(first.unauthorizedSince).toBe(T)
    expect(first.lastError).toEqual({ kind: 'unauthorized', message: '401', httpStatus: 401, at: T - HOUR })
    expect(followReport(first, report, T + 5000).unauthorizedSince).toBe(T)
    expect(followReport(first, { state: 'ok', lastSuccessAt: T + 6000 }, T + 6000).unauthorizedSince).toBeUndefined()
  })

  it('a leader\'s report read back is what it shared', () => {
    const health = reduceHealth(initialHealth(true), { type: 'failure', at: T, error: { kind: 'http', message: '503', httpStatus: 503 } })
    expect(reportOfHealth(health)).toEqual({ state: 'failing', lastAttemptAt: T, lastError: { kind: 'http', message: '503', httpStatus: 503 } })
  })
})
