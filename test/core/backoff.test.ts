import { describe, expect, test } from 'vitest'
import { backoffDelay, HoldfastError, isRetryable, parseRetryAfter } from '@holdfast/core'

describe('backoffDelay', () => {
  test('grows exponentially with equal jitter and stays under the cap', () => {
    expect(backoffDelay(0, () => 0)).toBe(500)
    expect(backoffDelay(0, () => 1)).toBe(1000)
    expect(backoffDelay(3, () => 0)).toBe(4000)
    expect(backoffDelay(3, () => 1)).toBe(8000)
    for (let attempt = 0; attempt < 100; attempt++) {
      const d = backoffDelay(attempt, Math.random)
      expect(d).toBeGreaterThanOrEqual(Math.min(60_000, 1000 * 2 ** attempt) / 2)
      expect(d).toBeLessThanOrEqual(60_000)
    }
    expect(backoffDelay(50, () => 1, { maxMs: 5000 })).toBe(5000)
  })
})

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-21T10:00:00Z')
  test('delta-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
  })
  test('HTTP-date', () => {
    expect(parseRetryAfter('Sat, 21 Nov 2026 10:00:30 GMT', now)).toBe(30_000)
  })
  test('asctime, the third HTTP-date form (RFC 9110 §5.6.7), read as UTC whatever the local time zone', () => {
    // Before: it did not pass the date-like check at all (no comma), so the wait was ignored; and a
    // `Date` header in this form was read as local time (V8 does), hours off outside UTC.
    const zone = process.env.TZ
    try {
      for (const tz of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
        process.env.TZ = tz
        expect(parseRetryAfter('Sat Nov 21 10:00:30 2026', now)).toBe(30_000)
        expect(parseRetryAfter('Sat Nov 21 10:00:30 2026', 0, 'Sat Nov 21 10:00:00 2026')).toBe(30_000)
        expect(parseRetryAfter('Sat, 21 Nov 2026 10:00:30 GMT', 0, 'Sat Nov 21 10:00:00 2026')).toBe(30_000)
        expect(parseRetryAfter('Saturday, 21-Nov-26 10:00:30 GMT', now)).toBe(30_000)
      }
    } finally {
      if (zone === undefined) delete process.env.TZ
      else process.env.TZ = zone
    }
  })
  test('ISO 8601', () => {
    expect(parseRetryAfter('2026-11-21T10:01:00Z', now)).toBe(60_000)
    expect(parseRetryAfter('2026-11-21T10:00:05.500Z', now)).toBe(5_500)
  })
  test('ISO 8601 without a zone (what Java\'s LocalDateTime prints) is read as UTC, as HTTP dates are', () => {
    // Before: Date.parse read it as local time, so outside UTC the wait was hours off (up to the
    // one-day clamp) or 0 (a retry storm); against a `Date` header in RFC form just as far off.
    const zone = process.env.TZ
    try {
      for (const tz of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
        process.env.TZ = tz
        expect(parseRetryAfter('2026-11-21T10:00:30', now), tz).toBe(30_000)
        expect(parseRetryAfter('2026-11-21T10:00:30.250', now), tz).toBe(30_250)
        expect(parseRetryAfter('2026-11-21T10:01', 0, 'Sat, 21 Nov 2026 10:00:00 GMT'), tz).toBe(60_000)
        // An offset or a Z is taken as written.
        expect(parseRetryAfter('2026-11-21T12:00:30+02:00', now), tz).toBe(30_000)
        expect(parseRetryAfter('2026-11-21T10:00:30Z', now), tz).toBe(30_000)
      }
    } finally {
      if (zone === undefined) delete process.env.TZ
      else process.env.TZ = zone
    }
  })
  test('past dates mean now; garbage means nothing; absurd values are clamped', () => {
    expect(parseRetryAfter('2020-01-01T00:00:00Z', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter('', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
    expect(parseRetryAfter('-5', now)).toBeUndefined()
    expect(parseRetryAfter('99999999', now)).toBe(24 * 60 * 60 * 1000)
  })
  test('a Date header that is no date is not the reference: the wait is read against the clock', () => {
    // Date.parse takes odd strings: '1' is 2001, 'x 5' a date in year 5. Taken as the server's
    // "now", a garbage Date header parked the client for the full day instead of 30 s.
    for (const garbage of ['1', 'x 5', '2', 'soon 2', 'undefined', '']) {
      expect(parseRetryAfter('Sat, 21 Nov 2026 10:00:30 GMT', now, garbage), garbage).toBe(30_000)
    }
    expect(parseRetryAfter('Sat, 21 Nov 2026 10:00:30 GMT', now, undefined)).toBe(30_000)
    expect(parseRetryAfter('Sat, 21 Nov 2026 10:00:30 GMT', now, null)).toBe(30_000)
  })
})

describe('isRetryable', () => {
  const http = (s: number) => new HoldfastError('HTTP', 'x', { httpStatus: s })
  test('transient failures retry; credentials, context and 413 do not', () => {
    for (const s of [404, 408, 409, 429, 500, 502, 503, 504]) expect(isRetryable(http(s))).toBe(true)
    // A redirect not followed (a captive portal's; status 0 in a browser): transient too (§2.1).
    for (const s of [0, 301, 302, 307, 308]) expect(isRetryable(http(s))).toBe(true)
    for (const s of [400, 401, 403, 413]) expect(isRetryable(http(s))).toBe(false)
    for (const code of ['NETWORK', 'TIMEOUT', 'INVALID_RESPONSE', 'EMPTY_RESPONSE'] as const) expect(isRetryable(new HoldfastError(code, 'x'))).toBe(true)
    for (const code of ['UNAUTHORIZED', 'INVALID_CONTEXT', 'BOOTSTRAP_INVALID'] as const) expect(isRetryable(new HoldfastError(code, 'x'))).toBe(false)
  })
})
