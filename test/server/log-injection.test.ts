// Text a client sends (or a path an operator gives) that reaches the relay's log must not write
// lines of its own: an operator (or a log shipper) reads each line as one thing the server said.
// Run as the built process.
import { copyFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, tempDir, waitFor } from './helpers'
import { relay } from './log-relay'
import { startUpstream } from './relay-fakes'

const FORGED = '\n[holdfast-server] forged: the data dir was wiped'

describe('log injection', () => {
  it('an event id with a newline, refused by the events sink, stays inside the one line naming it', async () => {
    const sink = await startUpstream({ status: 400, json: { error: 'no' } })
    const spool = join(await tempDir(), 'spool')
    const server = await relay(['--flags', 'examples/flags.json', '--events-upstream', `${sink.url}/events`, '--events-spool', spool])
    const event = { id: `e1${FORGED}`, type: 'custom', name: 'signup', time: Date.now() }
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [event] })).status).toBe(202)
    await waitFor(() => /refused 1 event\(s\) with 400/.test(server.output()), 15_000)
    const lines = server.output().split('\n')
    expect(lines.filter((line) => line.startsWith('[holdfast-server] forged'))).toEqual([])
    const named = lines.find((line) => /refused 1 event\(s\) with 400/.test(line))!
    expect(named).toContain('ids e1\\n[holdfast-server] forged: the data dir was wiped … e1\\n[holdfast-server] forged')
  }, 30_000)

  it('--log-format json: the id is escaped once, by JSON: the message read back holds the newline, still in one line', async () => {
    const sink = await startUpstream({ status: 400, json: { error: 'no' } })
    const server = await relay(['--flags', 'examples/flags.json', '--events-upstream', `${sink.url}/events`, '--events-spool', join(await tempDir(), 'spool'), '--log-format', 'json'])
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [{ id: `e1${FORGED}`, type: 'custom', name: 'signup', time: Date.now() }] })).status).toBe(202)
    await waitFor(() => /refused 1 event\(s\) with 400/.test(server.output()), 15_000)
    const entries = server.output().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { msg: string })
    const named = entries.find((entry) => /refused 1 event\(s\) with 400/.test(entry.msg))!
    // As `jq -r .msg` prints it: the id's own newline, not a backslash and an n.
    expect(named.msg).toContain(`ids e1${FORGED} … e1${FORGED}`)
  }, 30_000)

  // Not a client's text but an operator's: the one line a supervisor waits for (with --port 0 the
  // only place the port is said) is written past the logger, and was not escaped with the rest.
  it('a --flags path holding a newline: the serving line stays one line, the path escaped, and names the URL', async () => {
    const dir = join(await tempDir(), 'flags\nat')
    await mkdir(dir)
    await copyFile('examples/flags.json', join(dir, 'flags.json'))
    // relay() waits for `serving … at URL` on one line (as a supervisor would).
    const server = await relay(['--flags', join(dir, 'flags.json')])
    const lines = server.output().split('\n')
    expect(lines).toContain(`[holdfast-server] serving ${dir.replace('\n', '\\n')}/flags.json at ${server.url}`)
    expect(lines.filter((line) => line.startsWith('at/flags.json'))).toEqual([])
  }, 30_000)

  it('a long event id is cut in the line, with its length said', async () => {
    const sink = await startUpstream({ status: 400, json: { error: 'no' } })
    const server = await relay(['--flags', 'examples/flags.json', '--events-upstream', `${sink.url}/events`, '--events-spool', join(await tempDir(), 'spool')])
    const id = 'x'.repeat(128)
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [{ id, type: 'custom', name: 'signup', time: Date.now() }] })).status).toBe(202)
    await waitFor(() => /refused 1 event\(s\) with 400/.test(server.output()), 15_000)
    expect(server.output()).toContain(`(ids ${'x'.repeat(64)}… (128 characters) … ${'x'.repeat(64)}… (128 characters))`)
  }, 30_000)
})
