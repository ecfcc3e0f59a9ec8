// The last lines of holdfast-server's log at a SIGTERM, as an operator (or a supervisor waiting for
// it) reads them: what the repeat limiter held back is said before "stopped", and "stopped" is the
// last line. Run as the built process.
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers'
import { relay } from './log-relay'
import { startUpstream } from './relay-fakes'

describe('the log at a SIGTERM', () => {
  it('lines held back by the repeat limiter are summed up before "stopped", which stays the last line', async () => {
    // A source answering a different broken document at each poll: one refusal line a poll, all
    // of one kind (they differ in a number and a parenthesised detail).
    let polls = 0
    const upstream = await startUpstream(() => ({ status: 200, text: `{"flags": ${++polls}`, headers: { 'Content-Type': 'application/json' } }))
    const server = await relay(['--flags-url', `${upstream.url}/flags.json`, '--poll-interval', '0.1', '--upstream-timeout', '1'])
    const refused = () => server.output().split('\n').filter((line) => line.includes(`${upstream.url}/flags.json`) && !line.includes(' serving ')).length
    await waitFor(() => refused() >= 5 && polls >= 10, 10_000)
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    const lines = server.output().split('\n').filter((line) => line !== '')
    expect(lines.at(-1)).toBe('[holdfast-server] stopped')
    expect(lines.some((line) => line.startsWith('[holdfast-server] … and '))).toBe(true)
  }, 30_000)
})
