// Every message the server logs is one line in the holdfast-server command's log, whatever text it
// holds (a client's event id, a stack trace): in text, escaped; in JSON, escaped by JSON alone, so
// the line parses and its msg is the message as it was (ba3f546). Checked over arbitrary strings
// (every code point, lone surrogates, U+2028/U+2029, NEL, ESC, CR) through the loggers as the
// command composes them (prefixLogger over the repeat limiter over the writer's logger), and
// through prefixLogger over an embedder's logger.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { clipped, prefixLogger, writerLogger } from '../../packages/server/src/logger'
import { createRepeatLimiter } from '../../packages/server/src/repeatLimiter'

const BREAKS = /[\n\r\u000b\u000c\u0085\u2028\u2029]/
const awkward = fc.constantFrom('\n', '\r', '\r\n', '\u2028', '\u2029', '\u0085', '\u001b[31m', '\u007f', '\ud800', '\udfff', '\t', '(', ')', '"', '\\', '\u0000')
const message = fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), awkward), { maxLength: 12 }).map((parts) => parts.join(''))

function command(format: 'text' | 'json') {
  const lines: string[] = []
  const writer = { write: (_stream: 'out' | 'err', line: string) => void lines.push(line) }
  const limiter = createRepeatLimiter(writerLogger(writer, () => ({ format, level: 'info' })), { burst: 1e9 })
  return { lines, log: prefixLogger(limiter.logger) }
}

describe('one line per message, whatever it holds', () => {
  it('--log-format json: each line parses, and its msg is the message as it was', () => {
    fc.assert(
      fc.property(message, fc.constantFrom('info', 'warn', 'error') as fc.Arbitrary<'info' | 'warn' | 'error'>, (text, level) => {
        const { lines, log } = command('json')
        log[level](text)
        expect(lines).toHaveLength(1)
        expect(lines[0]).not.toMatch(BREAKS)
        expect(JSON.parse(lines[0]!)).toMatchObject({ level, msg: text })
      }),
      { numRuns: 2000 },
    )
  })

  it('--log-format text: each line is one line, starting with the prefix', () => {
    fc.assert(
      fc.property(message, (text) => {
        const { lines, log } = command('text')
        log.warn(text)
        expect(lines).toHaveLength(1)
        expect(lines[0]).not.toMatch(BREAKS)
        expect(lines[0]!.startsWith('[holdfast-server] ')).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })

  it("an embedder's logger: each message one line, starting with the prefix", () => {
    fc.assert(
      fc.property(message, (text) => {
        const lines: string[] = []
        const say = (line: string) => void lines.push(line)
        prefixLogger({ info: say, warn: say, error: say }).error(text)
        expect(lines).toHaveLength(1)
        expect(lines[0]).not.toMatch(BREAKS)
        expect(lines[0]!.startsWith('[holdfast-server] ')).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })

  it('the repeat limiter: lines naming events by their ids (any text, parentheses too) are one kind, so a flood of them is held back', () => {
    const id = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.array(fc.constantFrom('(', ')', 'a', '1', ' ', '…'), { maxLength: 10 }).map((c) => c.join('')))
    fc.assert(
      fc.property(fc.array(id, { minLength: 2, maxLength: 8 }), (ids) => {
        const lines: string[] = []
        const say = (line: string) => void lines.push(line)
        const { logger } = createRepeatLimiter({ info: say, warn: say, error: say }, { burst: 1 })
        for (const one of ids) logger.error(`[holdfast-server] events upstream refused 1 event(s) with 400; DROPPED, not kept (ids ${clipped(one, 64)} … ${clipped(one, 64)})`)
        expect(lines).toHaveLength(1)
      }),
      { numRuns: 1000 },
    )
  })
})
