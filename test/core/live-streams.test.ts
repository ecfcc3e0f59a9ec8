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

  it('a stream written with every optional field empty (Go, Java: url "", origin "", null) is read by the field that is set', () => {
    // Before: `url: ""` beside an endpoint resolved to the OFREP base URL itself (the client opened
    // its stream there, got no notices, and with polling off never saw a change), and `origin: ""`
    // made the endpoint unusable (no stream at all).
    const endpoint = { origin: '', requestUri: '/holdfast/v1/stream' }
    const expected = { url: 'https://flags.example.com/holdfast/v1/stream', inactivityDelaySec: 120 }
    expect(readStreamInfo([{ type: 'sse', url: '', endpoint, inactivityDelaySec: 0 }], BASE)).toEqual(expected)
    expect(readStreamInfo([{ type: 'sse', url: null, endpoint: { ...endpoint, origin: null }, inactivityDelaySec: null }], BASE)).toEqual(expected)
    expect(readStreamInfo([{ type: 'sse', url: 'https://sse.example.com/s', endpoint: null, inactivityDelaySec: 0 }], BASE)).toEqual({ url: 'https://sse.example.com/s', inactivityDelaySec: 120 })
    // Nothing usable at all: no stream (polling goes on), never the OFREP URL as a stream.
    expect(readStreamInfo([{ type: 'sse', url: '', endpoint: { origin: '', requestUri: '' } }], BASE)).toBeUndefined()
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
