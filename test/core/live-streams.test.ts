// Reading OFREP 0.3.0 `eventStreams` into the one stream the client listens to. Internal to the
// on-demand chunk, so imported by path.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { readStreamInfo } from '../../packages/core/src/live/streamInfo'

const BASE = 'https://flags.example.com/api'

describe('reading eventStreams', () => {
  it('joins endpoint.requestUri to the OFREP URL origin, or to endpoint.origin', () => {
    expect(readStreamInfo([{ type: 'sse', endpoint: { requestUri: '/holdfast/v1/stream' } }], BASE)).toEqual({
      url: 'https://flags.example.com/holdfast/v1/stream',
      inactivityDelaySec: 120,
    })
    expect(readStreamInfo([{ type: 'sse', endpoint: { origin: 'https://sse.example.com', requestUri: '/s?c=1' }, inactivityDelaySec: 30 }], BASE)).toEqual({
      url: 'https://sse.example.com/s?c=1',
      inactivityDelaySec: 30,
    })
  })

  it('takes an absolute url, and skips unknown types and unusable entries for the first usable sse one', () => {
    const streams = [
      { type: 'websocket', url: 'wss://x.example/ws' },
      { type: 'sse' },
      { type: 'sse', endpoint: { requestUri: 'no-leading-slash' } },
      { type: 'sse', url: 'javascript:alert(1)' },
      null,
      'sse',
      { type: 'sse', url: 'https://sse.example.com/event-stream?channels=env_abc123_v1', inactivityDelaySec: -5 },
    ]
    expect(readStreamInfo(streams, BASE)).toEqual({ url: 'https://sse.example.com/event-stream?channels=env_abc123_v1', inactivityDelaySec: 120 })
  })

  it('reads nothing from what is not a list of streams', () => {
    for (const raw of [undefined, null, {}, 'sse', 42, [], [{ type: 'SSE', url: 'https://x.example' }]]) expect(readStreamInfo(raw, BASE)).toBeUndefined()
  })

  it('never throws, and only ever yields an http(s) URL, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (raw) => {
        const info = readStreamInfo(raw, BASE)
        if (info) {
          expect(info.url).toMatch(/^https?:\/\//)
          expect(info.inactivityDelaySec).toBeGreaterThanOrEqual(1)
        }
      }),
      { numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.array(fc.record({ type: fc.constant('sse'), url: fc.string(), endpoint: fc.record({ origin: fc.string(), requestUri: fc.string() }) }, { requiredKeys: ['type'] })), (raw) => {
        const info = readStreamInfo(raw, BASE)
        if (info) expect(info.url).toMatch(/^https?:\/\//)
      }),
      { numRuns: 500 },
    )
  })
})
