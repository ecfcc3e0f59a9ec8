// The relay's own log, as an operator runs it: stdout and stderr are pipes to a log shipper (or a
// `| grep`), and that reader can stall. Run as the built holdfast-server process.
import { describe, expect, it } from 'vitest'
import { relay, within } from './log-relay'
import { booleanFlags, startUpstream } from './relay-fakes'

// Every poll finds a new generation of the definitions with all 2,000 flags changed (on, off, on
// ...): one "serving definitions" line of ~80 KiB naming them, at each poll: a flapping upstream.
async function flappingUpstream() {
  let polls = 0
  let flapping = true
  const upstream = await startUpstream(() => {
    const generation = flapping ? ++polls : polls
    const { flags } = booleanFlags(2000, generation % 2 === 0 ? 'on' : 'off', 'a-flag-key-long-enough-to-make-lines-big-')
    return { document: { flags: { ...flags, generation: { state: 'ENABLED', variants: { n: generation }, defaultVariant: 'n' } } } }
  })
  return {
    url: `${upstream.url}/flags.json`,
    polls: () => polls,
    /** The upstream settles: no more lines. */
    settle: () => void (flapping = false),
  }
}

async function untilPolls(upstream: { polls(): number }, n: number) {
  const started = Date.now()
  while (upstream.polls() < n && Date.now() - started < 15_000) await new Promise((r) => setTimeout(r, 50))
  expect(upstream.polls()).toBeGreaterThanOrEqual(n)
}

async function untilQuiet(server: { received(): number }) {
  for (let last = -1; server.received() !== last; ) {
    last = server.received()
    await new Promise((r) => setTimeout(r, 500))
  }
}

describe('a log reader that stops reading', () => {
  it('costs the relay at most ~1 MiB of waiting lines, the rest dropped and counted, and it keeps answering', async () => {
    const upstream = await flappingUpstream()
    const server = await relay(['--flags-url', upstream.url, '--poll-interval', '0.1'])
    const before = upstream.polls()
    server.stall()
    // ~50 lines of ~80 KiB (4 MiB) logged while nobody reads.
    await untilPolls(upstream, before + 50)
    expect(await within(`${server.url}/readyz`, 3000)).toBe(200)
    upstream.settle()
    server.resume()
    await untilQuiet(server)
    // What waited: the bound, plus what the pipe and this reader's buffers held (well under 1 MiB).
    expect(server.received()).toBeLessThan(2.5 * 1024 * 1024)
    const said = Number(server.output().match(/\[holdfast-server\] (\d+) log line\(s\) dropped: the reader of stdout\/stderr was not keeping up\n/)?.[1])
    expect(said).toBeGreaterThan(0)
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toContain(`holdfast_log_lines_dropped_total ${said}\n`)
  }, 30_000)

  it('loses none of the last lines at SIGTERM: they are written before the exit once the reader reads again', async () => {
    const upstream = await flappingUpstream()
    const server = await relay(['--flags-url', upstream.url, '--poll-interval', '0.1'])
    const before = upstream.polls()
    server.stall()
    await untilPolls(upstream, before + 10)
    server.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    server.resume()
    expect(await server.exited).toBe(0)
    expect(server.output()).toMatch(/\[holdfast-server\] SIGTERM: draining[^\n]*\n(?:[^\n]*\n)*\[holdfast-server\] stopped\n/)
  }, 30_000)
})
