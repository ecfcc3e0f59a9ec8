// Numbers on the command line, as an operator types them, read the same way by the server, the
// relay, `snapshot` and `events replay-dead-letters`: plain decimal digits (a fraction where the
// option takes one) or a usage error (exit 2). Before, `events replay-dead-letters --batch 0x10`
// sent batches of 16, `--timeout 1e3` waited 1000 s, while the server refused both. And the replay's
// spool path that does not exist: exit 3 naming it (the step's own disk, as snapshot --out), not a bare "ENOENT … realpath".
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { runEventsCli } from '@holdfast/server'
import type { CliValues } from '../../packages/server/src/cliOptions'
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { serverProcess } from './events-process'
import { tempDir } from './helpers'

const SINK = 'http://127.0.0.1:9/events'
const quiet = { out: () => {}, err: () => {} }

// What an operator means by a number, said without a regular expression: ASCII digits, and for an
// option that takes a fraction at most one dot with digits on at least one side of it.
function meant(text: string, whole: boolean): number | undefined {
  const parts = text.split('.')
  const digits = (part: string) => [...part].every((c) => c >= '0' && c <= '9')
  if (parts.length > (whole ? 1 : 2) || !parts.every(digits) || parts.join('') === '') return undefined
  return Number(text)
}
const within = (value: number | undefined, min: number, max: number) => value !== undefined && value >= min && value <= max

const odd = fc.oneof(
  fc.constantFrom('0x10', '1e3', ' 5', '5 ', '5abc', '+5', '0b11', '0o7', 'Infinity', 'NaN', '', '.', '5.', '.5', '1_000', '٣', '５', '\n5', '0.0.1', '1e-3', '00010', '0', '2000', '2001', '600', '600.5', '-1', '10,5'),
  fc.string({ maxLength: 8 }),
  fc.nat({ max: 100_000 }).map(String),
  fc.double({ noNaN: true, min: 0, max: 1e6 }).map(String),
)

describe('numeric options on the command line', () => {
  // Exit 3, as `snapshot --out DIR/FILE` with DIR missing: the command line is well-formed and the
  // same one replays once the directory is there (a step that restores the spool was skipped), so
  // it is the step's own disk, not a usage error (2, with the help text). The sink is not asked.
  it('events replay-dead-letters on a spool directory that does not exist (or is a file): exit 3 naming the path and what was expected, no help text', async () => {
    const missing = join(await tempDir(), 'no-such-spool')
    const run = serverProcess(['events', 'replay-dead-letters', '--events-spool', missing, '--events-upstream', SINK])
    expect((await run.exited).code).toBe(3)
    expect(run.output()).toContain(`nothing replayed: --events-spool ${missing}: the directory ${missing} does not exist; expected the spool directory of a relay's --events-upstream`)
    expect(run.output()).not.toMatch(/ENOENT|realpath|\n\s+at |Usage:/)
    const file = join(await tempDir(), 'a-file')
    await writeFile(file, '')
    const lines: string[] = []
    expect(await runEventsCli(['replay-dead-letters', '--events-spool', file, '--events-upstream', SINK], { out: (l) => lines.push(l), err: (l) => lines.push(l) })).toBe(3)
    expect(lines.join('\n')).toContain(`${file} is not a directory`)
    // A wrong command line is still told first, the directory missing or not.
    expect(await runEventsCli(['replay-dead-letters', '--events-spool', missing, '--events-upstream', SINK, '--batch', '0x10'], quiet)).toBe(2)
  })

  it('events replay-dead-letters --batch 0x10 is a usage error (exit 2), as the server refuses --port 0x10', async () => {
    const spool = join(await tempDir(), 'spool')
    await mkdir(spool)
    const run = serverProcess(['events', 'replay-dead-letters', '--events-spool', spool, '--events-upstream', SINK, '--batch', '0x10'])
    expect((await run.exited).code).toBe(2)
    expect(run.output()).toContain('--batch must be a whole number from 1 to 2000, got "0x10"')
  })

  it('property: any string is taken by every command only as the decimal number it spells, else refused as a usage error', async () => {
    const dir = await tempDir()
    const spool = join(dir, 'spool')
    await mkdir(spool)
    const server = (values: CliValues) => buildServerOptions(values, {}).ok
    // An accepted value runs on to "no dead letters" (exit 0) or the missing --flags file (exit 1).
    const replay = async (option: string, text: string) => (await runEventsCli(['replay-dead-letters', '--events-spool', spool, '--events-upstream', SINK, `--${option}=${text}`], quiet)) !== 2
    const snapshot = async (option: string, text: string) => (await runSnapshotCli(['--flags', join(dir, 'absent.json'), '--out', join(dir, 'out.json'), `--${option}=${text}`], quiet)) !== 2
    await fc.assert(
      fc.asyncProperty(odd, async (text) => {
        const whole = meant(text, true)
        const fraction = meant(text, false)
        expect([
          server({ flags: 'f.json', port: text }),
          server({ flags: 'f.json', 'max-event-loop-delay': text }),
          server({ 'flags-url': 'http://127.0.0.1:1/f.json', 'poll-interval': text }),
          server({ 'flags-url': 'http://127.0.0.1:1/f.json', 'max-shrink': text }),
          await replay('batch', text),
          await replay('timeout', text),
          await snapshot('timeout', text),
          await snapshot('max-shrink', text),
        ]).toEqual([
          within(whole, 0, 65535),
          within(whole, 0, 60_000),
          within(fraction, 0.05, 86_400),
          within(fraction, 0, 100),
          within(whole, 1, 2000),
          within(fraction, 0, 600) && fraction! > 0,
          within(fraction, 0, 600) && fraction! > 0,
          within(fraction, 0, 100),
        ])
      }),
      { numRuns: 150 },
    )
  }, 60_000)
})
