// A line longer than the log writer's bound (1 MiB waiting per stream), the reader keeping up: what
// the operator reads. Run as the built holdfast-server process.
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers'
import { relay } from './log-relay'
import { booleanFlags, startUpstream } from './relay-fakes'

describe('a log line over the bound', () => {
  it('a new flag set changing 20,000 flags at once is said (cut to 64 Ki characters), not dropped as if the reader had stalled', async () => {
    // 20,000 keys of 60 characters: the list of the changed keys alone is 1.2 MiB.
    let variant: 'on' | 'off' = 'on'
    const upstream = await startUpstream(() => ({ document: booleanFlags(20_000, variant, `a-flag-key-long-enough-to-make-the-line-long-${'k'.repeat(9)}-`) }))
    const server = await relay(['--flags-url', `${upstream.url}/flags.json`, '--poll-interval', '0.5'])
    variant = 'off'
    await waitFor(() => /serving definitions \S+ from .*\(20000 flags; changed: /.test(server.output()) || /log line\(s\) dropped/.test(server.output()), 20_000, 100)
    // Lines dropped are said at the latest before the exit.
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    expect(server.output()).not.toMatch(/log line\(s\) dropped: the reader of stdout\/stderr was not keeping up/)
    const line = server.output().split('\n').find((l) => /serving definitions \S+ from .*\(20000 flags; changed: /.test(l))
    // Cut, saying so: 64 Ki characters.
    expect(line).toMatch(/… \(cut: 1,\d{3},\d{3} characters\)$/)
    expect(line!.length).toBeLessThan(66 * 1024)
  }, 30_000)
})
