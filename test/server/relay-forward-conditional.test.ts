// `--forward-header` passes a client's headers to the upstream (CONTRACT §9). A conditional or
// range header (If-Match, If-Unmodified-Since, If-Modified-Since, If-Range, Range) is the client's
// question about the client's own copy: forwarded, it lets any one client make the upstream answer
// the relay's request with 412, 304 or 206, none of which is an answer the relay can serve. A 304
// the relay did not ask for and a 206 read as an upstream that is down for everyone (the breaker
// opens after two), a 412 as an upstream that fails. So they are refused at start, as the headers
// the relay writes itself are, by every way a relay is configured.
import { describe, expect, it } from 'vitest'
import { createUpstreamSource } from '@holdfast/server'
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { startUpstream, type RecordedRequest } from './relay-fakes'

const CONDITIONAL = ['If-Match', 'If-Unmodified-Since', 'If-Modified-Since', 'If-Range', 'Range']

/** An upstream that honours conditional and range requests as an HTTP server may (RFC 9110 §13, §14). */
function conditionalUpstream() {
  return startUpstream((request: RecordedRequest) => {
    const h = request.headers
    if (h['if-match'] !== undefined && h['if-match'] !== '*') return { status: 412, json: { error: 'precondition failed' } }
    if (h['if-unmodified-since'] !== undefined) return { status: 412, json: { error: 'precondition failed' } }
    if (h['if-modified-since'] !== undefined) return { status: 304 }
    if (h.range !== undefined) return { status: 206, text: '{"flags":[{"ke', contentType: 'application/json', headers: { 'Content-Range': 'bytes 0-13/60' } }
    return { ofrep: () => ({ flags: [{ key: 'kill-switch', value: false, reason: 'STATIC' }] }) }
  })
}

describe('--forward-header refuses conditional and range headers', () => {
  it('createFlagServer, the CLI, createUpstreamSource and the snapshot command refuse each one, naming it and why', async () => {
    const upstream = await conditionalUpstream()
    for (const name of CONDITIONAL) {
      // Before: the relay started, and a client sending the header made the upstream answer 412/304/206.
      await expect(startServer({ flags: undefined, upstream: upstream.url, forwardHeaders: ['Authorization', name], logger: recordingLogger() }), name).rejects.toThrow(
        new RegExp(`forwardHeaders: ${name} cannot be forwarded .*(304|206|412)`),
      )
      const cli = buildServerOptions({ upstream: upstream.url, 'forward-header': ['Authorization', name] }, {})
      expect(cli, name).toMatchObject({ ok: false, error: expect.stringMatching(new RegExp(`--forward-header ${name}: .*cannot be forwarded`)) })
      expect(() => createUpstreamSource({ url: upstream.url, forwardHeaders: [name.toLowerCase()], timeoutMs: 500, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, log: recordingLogger() }), name).toThrow(
        new RegExp(`${name.toLowerCase()} cannot be forwarded`, 'i'),
      )
      const err: string[] = []
      const code = await runSnapshotCli(['--upstream', upstream.url, '--context', '{"targetingKey":"u"}', '--out', `${await tempDir()}/s.json`, '--header', `${name}: x`], { out: () => {}, err: (line) => err.push(line) })
      expect(code, name).toBe(2)
      expect(err.join('\n')).toMatch(new RegExp(`--header ${name}: cannot be set`))
    }
    // The upstream was never asked with one of them.
    expect(upstream.requests.filter((r) => CONDITIONAL.some((name) => r.headers[name.toLowerCase()] !== undefined))).toEqual([])
  })

  it('a client sending them to a relay that forwards Authorization gets the whole, fresh answer, and the others are unaffected', async () => {
    const upstream = await conditionalUpstream()
    const server = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 1000, logger: recordingLogger() })
    const hostile = { 'If-Match': '"nope"', 'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT', 'If-Modified-Since': new Date().toUTCString(), 'If-Range': '"x"', Range: 'bytes=0-13' }
    for (const key of ['a', 'b', 'c']) {
      const answer = await evaluate(server, { targetingKey: key }, { Authorization: 'Bearer k', ...hostile })
      expect(answer.status).toBe(200)
      expect(((await answer.json()) as { metadata: { holdfast: { stale: boolean } } }).metadata.holdfast.stale).toBe(false)
    }
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { upstream: { state: string } }
    expect(status.upstream.state).toBe('ok')
    await server.close()
  })
})
