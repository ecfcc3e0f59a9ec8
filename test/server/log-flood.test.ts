// A client must not be able to flood the relay's log: a line it can make repeat is written a few
// times a minute, the rest counted in one line. Run as the built holdfast-server process.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, tempDir, waitFor } from './helpers'
import { relay } from './log-relay'
import { startUpstream } from './relay-fakes'

const deadLettered = async (url: string) => Number((await (await fetch(`${url}/metrics`)).text()).match(/holdfast_events_forwarded_total\{outcome="dead_lettered"\} (\d+)/)?.[1] ?? 0)

describe('a log flood', () => {
  it('5,000 events the events sink refuses, one per request: a few lines naming them, then one saying how many more', async () => {
    const sink = await startUpstream({ status: 400, json: { error: 'no' } })
    const server = await relay(['--flags', 'examples/flags.json', '--events-upstream', `${sink.url}/events`, '--events-spool', join(await tempDir(), 'spool')])
    let sent = 0
    const send = async () => {
      while (sent < 5000) {
        const id = `bad-${sent++}`
        expect((await post(`${server.url}/holdfast/v1/events`, { events: [{ id, type: 'custom', name: 'signup', time: Date.now() }] })).status).toBe(202)
      }
    }
    await Promise.all(Array.from({ length: 16 }, send))
    // Refused for good and dead-lettered a few at a time, each refusal (and each split of a batch
    // to find the refused events) a line of its own before.
    // 15 s alone on a busy 2-core machine; more room when other suites share the cores.
    await waitFor(async () => (await deadLettered(server.url)) >= 30, 40_000, 200)
    const refused = server.output().split('\n').filter((line) => line.startsWith('[holdfast-server] events upstream refused ') && line.includes(' with 400'))
    // At most 5 a minute of each kind: "refused a batch of N …; sending it in pieces", "refused N event(s) …".
    expect(refused.length).toBeLessThanOrEqual(10)
    // SIGTERM: what was held back is said before the exit.
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    const more = [...server.output().matchAll(/\[holdfast-server\] … and ([\d,]+) more like this in the last 60 s \(the last: events upstream refused /g)]
    expect(more.length).toBeGreaterThan(0)
  }, 60_000)

  it('50 refused events whose ids hold ")": still one kind of line, at most 5 of them, then the summary', async () => {
    const sink = await startUpstream({ status: 400, json: { error: 'no' } })
    const server = await relay(['--flags', 'examples/flags.json', '--events-upstream', `${sink.url}/events`, '--events-spool', join(await tempDir(), 'spool')])
    // Ids that differ in letters only (numbers are left out of a kind anyway), after a ")": a
    // parenthesised detail ("(ids …)") ended there, and the rest of each id made a kind of its own.
    const letters = (i: number) => String.fromCharCode(97 + (i % 26), 97 + Math.floor(i / 26))
    for (let i = 0; i < 50; i++) {
      expect((await post(`${server.url}/holdfast/v1/events`, { events: [{ id: `bad) ${letters(i)}`, type: 'custom', name: 'signup', time: Date.now() }] })).status).toBe(202)
      await waitFor(async () => (await deadLettered(server.url)) > i, 10_000, 20)
    }
    const refused = () => server.output().split('\n').filter((line) => /^\[holdfast-server\] events upstream refused 1 event\(s\) with 400/.test(line))
    expect(refused().length).toBeLessThanOrEqual(5)
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    const more = [...server.output().matchAll(/\[holdfast-server\] … and ([\d,]+) more like this in the last 60 s \(the last: events upstream refused 1 event/g)]
    expect(more.map((m) => Number(m[1]))).toEqual([50 - refused().length])
  }, 45_000)
})
