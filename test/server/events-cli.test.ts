// The events options of the holdfast-server command.
import { describe, expect, it } from 'vitest'
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
})
