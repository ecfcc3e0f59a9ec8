// The events options of the holdfast-server command.
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
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
})
