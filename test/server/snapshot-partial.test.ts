// `holdfast-server snapshot --upstream …` writes the values a client's `fallback` (a Lambda's first
// request) reads. An upstream answering a flag with a per-flag error (GENERAL, PARSE_ERROR) has no
// value for it, so the snapshot cannot hold it: before, the step wrote the file without it and
// exited 0, saying only "(1 per-flag errors left out)", and a CI build shipped a fallback missing
// its kill switch. Now it refuses (exit 1, the file untouched) naming each flag left out, unless
// the operator opts in with --allow-partial. The built binary against an upstream on 127.0.0.1.
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers'
import { startUpstream } from './relay-fakes'

const BIN = join(process.cwd(), 'packages/server/dist/bin.js')
const run = (args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'snapshot', ...args], { timeout: 15_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    )
  })

const good = [
  { key: 'banner', value: 'hi', reason: 'STATIC' },
  { key: 'limit', value: 5, reason: 'STATIC' },
  { key: 'checkout', value: true, reason: 'STATIC' },
]
const partial = [
  ...good,
  { key: 'kill-switch', errorCode: 'GENERAL', errorDetails: 'evaluation timed out' },
  { key: 'pricing', errorCode: 'PARSE_ERROR' },
]
const keys = async (file: string) => (JSON.parse(await readFile(file, 'utf8')) as { flags: Array<{ key: string }> }).flags.map((f) => f.key).sort()

describe('snapshot --upstream: a flag the upstream answered with a per-flag error', () => {
  it('is refused, naming each flag left out (exit 1, the previous file untouched)', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [...good, { key: 'kill-switch', value: false, reason: 'STATIC' }, { key: 'pricing', value: 'a', reason: 'STATIC' }] }) })
    const out = join(await tempDir(), 'fallback.json')
    const args = ['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out]
    expect((await run(args)).code).toBe(0)
    const written = await readFile(out, 'utf8')

    upstream.set({ ofrep: () => ({ flags: partial }) })
    const result = await run(args)
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('"kill-switch" (GENERAL: evaluation timed out)')
    expect(result.stderr).toContain('"pricing" (PARSE_ERROR)')
    expect(result.stderr).toMatch(/--allow-partial/)
    expect(await readFile(out, 'utf8')).toBe(written)

    // No previous file: nothing is written either.
    const fresh = join(await tempDir(), 'fallback.json')
    expect((await run(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', fresh])).code).toBe(1)
    await expect(readFile(fresh, 'utf8')).rejects.toThrow(/ENOENT/)
  })

  it('with --allow-partial is written without them, each named on stderr (exit 0)', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: partial }) })
    const out = join(await tempDir(), 'fallback.json')
    await writeFile(out, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: good, fetchedAt: 1 }))
    const result = await run(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out, '--allow-partial'])
    expect(result.code).toBe(0)
    expect(await keys(out)).toEqual(['banner', 'checkout', 'limit'])
    expect(result.stderr).toContain('"kill-switch" (GENERAL: evaluation timed out)')
    expect(result.stderr).toContain('"pricing" (PARSE_ERROR)')
    expect(result.stdout).toMatch(/a Bootstrap of 3 flags/)
  })

  // With --allow-partial and every flag answered with an error, nothing is left: refused as empty
  // (CONTRACT §9), the old file untouched. Before, the refusal said only "the new flag set has no
  // flags", of an upstream that had just answered two, and named none of them or their errors.
  it('with --allow-partial and every flag failed is still refused, naming them (exit 1, the file untouched)', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: partial.slice(good.length) }) })
    const out = join(await tempDir(), 'fallback.json')
    await writeFile(out, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: good, fetchedAt: 1 }))
    const before = await readFile(out, 'utf8')
    const result = await run(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out, '--allow-partial'])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/snapshot refused: .*no flags/)
    expect(result.stderr).toContain('"kill-switch" (GENERAL: evaluation timed out)')
    expect(result.stderr).toContain('"pricing" (PARSE_ERROR)')
    expect(await readFile(out, 'utf8')).toBe(before)
  })

  // An evaluator down behind the upstream answers every flag GENERAL: thousands of names on one line
  // were cut at the log's 64 Ki characters, and with them the end of the line, the file "left
  // untouched" and the way out (--allow-partial). A few are named and the rest counted, as the
  // definitions snapshot names its changed keys.
  it('thousands of flags left out: a few named, the rest counted, the line whole', async () => {
    const failing = Array.from({ length: 3000 }, (_, i) => ({ key: `flag-${i}`, errorCode: 'GENERAL', errorDetails: 'evaluation timed out' }))
    const upstream = await startUpstream({ ofrep: () => ({ flags: [...good, ...failing] }) })
    const out = join(await tempDir(), 'fallback.json')
    const result = await run(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('"flag-0" (GENERAL: evaluation timed out)')
    expect(result.stderr).toMatch(/and 2,990 more; .* left untouched \(--allow-partial writes the others\)/)
    expect(result.stderr.length).toBeLessThan(4096)
  })

  it('FLAG_NOT_FOUND is a flag that is gone, not an error: left out, named, exit 0', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [...good, { key: 'retired', errorCode: 'FLAG_NOT_FOUND' }] }) })
    const out = join(await tempDir(), 'fallback.json')
    const result = await run(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out])
    expect(result.code).toBe(0)
    expect(await keys(out)).toEqual(['banner', 'checkout', 'limit'])
    expect(result.stdout).toContain('"retired"')
  })

  // Named as the failed ones are, the first 10 and a count: 3,000 flags deleted at once (a project
  // emptied upstream but for three) made one stdout line of ~40 K characters with every key.
  it('3,000 FLAG_NOT_FOUND entries: the first ten named, the rest counted, on one short line', async () => {
    const retired = Array.from({ length: 3000 }, (_, i) => ({ key: `retired-${i}`, errorCode: 'FLAG_NOT_FOUND' }))
    const upstream = await startUpstream({ ofrep: () => ({ flags: [...good, ...retired] }) })
    const out = join(await tempDir(), 'fallback.json')
    const result = await run(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out])
    expect(result.code).toBe(0)
    expect(await keys(out)).toEqual(['banner', 'checkout', 'limit'])
    expect(result.stdout).toContain('"retired-9", and 2,990 more)')
    expect(result.stdout).not.toContain('"retired-10"')
    expect(result.stdout.length).toBeLessThan(1024)
  })

  // An entry the snapshot cannot read (a key that is not a string, an entry that is not an object)
  // is a flag the upstream answered that the file would ship without, as a per-flag error is: the
  // client reads such an answer as partial too (CONTRACT §4). Before, it was left out in silence:
  // exit 0, "a Bootstrap of 3 flags", not a word on stderr.
  it('an entry that cannot be read is refused the same way; --allow-partial writes the others and says so', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [...good, { key: 7, value: false, reason: 'STATIC' }, 'kill-switch'] }) })
    const out = join(await tempDir(), 'fallback.json')
    await writeFile(out, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: good, fetchedAt: 1 }))
    const before = await readFile(out, 'utf8')
    const args = ['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out]
    const refused = await run(args)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/2 entries that could not be read/)
    expect(refused.stderr).toMatch(/--allow-partial/)
    expect(await readFile(out, 'utf8')).toBe(before)

    const written = await run([...args, '--allow-partial'])
    expect(written.code).toBe(0)
    expect(await keys(out)).toEqual(['banner', 'checkout', 'limit'])
    expect(written.stderr).toMatch(/snapshot warning: .*2 entries that could not be read/)
  })

  it('--help names --allow-partial', async () => {
    const result = await run(['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/--allow-partial/)
  })
})
