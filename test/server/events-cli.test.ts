// The events options of the holdfast-server command.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { deadLetterPath, runEventsCli } from '@holdfast/server'
import { post, tempDir } from './helpers'
import { serverProcess } from './events-process'

describe('holdfast-server events options', () => {
  it('refuses --events-upstream with --events-file, a non-http upstream, and a zero --events-max-bytes, with a message', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--events-upstream', 'http://127.0.0.1:9/holdfast/v1/events', '--events-file', 'x.jsonl'], /cannot be combined/],
      [['--events-upstream', 'ftp://example.com/events'], /must be an http\(s\) URL/],
      [['--events-max-bytes', '0'], /--events-max-bytes must be from 1/],
    ]
    for (const [args, message] of cases) {
      const run = serverProcess(['--flags', 'examples/flags.json', '--port', '0', ...args])
      const exit = await run.exited
      expect(exit.code).not.toBe(0)
      expect(run.output()).toMatch(message)
    }
  }, 60_000)

  it('--events-max-bytes and --events-keep rotate the events file', async () => {
    const dir = await tempDir()
    const run = serverProcess(['--flags', 'examples/flags.json', '--port', '0', '--events-file', join(dir, 'events.jsonl'), '--events-max-bytes', '400', '--events-keep', '1'])
    const url = await run.url()
    for (let i = 0; i < 12; i++) {
      const response = await post(`${url}/holdfast/v1/events`, { events: [{ id: `cli-rot-${i}`, type: 'custom', name: 'n', time: i }] })
      expect(response.status).toBe(202)
    }
    // events.jsonl.lock: the running server's lock (one server per events file).
    expect((await readdir(dir)).sort()).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.lock'])
    await run.kill()
  }, 60_000)

  it('replay-dead-letters refuses an option given twice (exit 2) instead of sending to the last one named', async () => {
    // An operator who pastes a second --events-upstream (or --events-spool) after the first: the
    // server and the snapshot command refuse that as a usage error (docs/relay.md: "not the last one
    // wins"). Before, this command took the last one without a word and sent the dead letters there.
    const spool = join(await tempDir(), 'spool')
    const letters = deadLetterPath(spool)
    await mkdir(dirname(letters), { recursive: true })
    const line = JSON.stringify({ deadLetteredAt: 1, status: 413, event: { id: 'twice-1', type: 'custom', name: 'n', time: 1 } }) + '\n'
    await writeFile(letters, line)
    const asked: string[] = []
    const fetchSpy = (async (url: string | URL | Request) => {
      asked.push(String(url))
      return new Response('{"accepted":1,"duplicates":0}', { status: 202, headers: { 'Content-Type': 'application/json' } })
    }) as typeof fetch
    const cases = [
      ['--events-upstream', 'http://127.0.0.1:9/old-sink', '--events-upstream', 'http://127.0.0.1:9/new-sink'],
      ['--events-upstream', 'http://127.0.0.1:9/sink', '--events-spool', join(spool, 'elsewhere')],
      ['--events-upstream', 'http://127.0.0.1:9/sink', '--batch', '10', '--batch', '1'],
    ]
    for (const extra of cases) {
      const lines: string[] = []
      const code = await runEventsCli(['replay-dead-letters', '--events-spool', spool, ...extra], { out: (l) => lines.push(l), err: (l) => lines.push(l) }, fetchSpy)
      expect(code).toBe(2)
      expect(lines.join('\n')).toMatch(/--(events-upstream|events-spool|batch) is given 2 times: give it once/)
    }
    expect(asked).toEqual([])
    expect(await readFile(letters, 'utf8')).toBe(line)
  })
})
