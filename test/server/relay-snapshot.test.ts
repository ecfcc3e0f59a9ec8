// `holdfast-server snapshot`: the CI step never ships a broken snapshot. Each refusal leaves the
// previous file byte for byte as it was.
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { lstat, mkdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bootstrapSchema, runEventsCli } from '@holdfast/server'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { booleanFlags, startUpstream } from './relay-fakes'
import { startServer, tempDir } from './helpers'

async function snapshot(args: string[]) {
  const lines: string[] = []
  const code = await runSnapshotCli(args, { out: (l) => lines.push(l), err: (l) => lines.push(l) })
  return { code, output: lines.join('\n') }
}

describe('holdfast-server snapshot: why it failed, by its exit code', () => {
  it('1 when the source refused (the flag service is the problem), 3 when the file could not be written (the CI step is)', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream({ status: 503, text: 'down' })
    const refused = await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', join(dir, 'out.json')])
    expect(refused).toMatchObject({ code: 1, output: expect.stringMatching(/snapshot refused: .*503/) })
    // A good answer and a path that cannot be written (a directory is in the way; as root, a
    // read-only mode would not stop the write).
    upstream.set({ document: booleanFlags(3) })
    const blocked = join(dir, 'blocked')
    await mkdir(join(blocked, 'inside'), { recursive: true })
    const unwritable = await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', blocked])
    expect(unwritable).toMatchObject({ code: 3, output: expect.stringMatching(/snapshot not written: cannot write .*blocked/) })
    expect((await lstat(blocked)).isDirectory()).toBe(true)
    // The help says which is which.
    expect((await snapshot(['--help'])).output).toMatch(/1 refused .*2 usage error; 3 not written/)
  })
})

describe('holdfast-server snapshot and events: a usage error names its subcommand', () => {
  it("'snapshot: ' as 'events: ', an unknown or repeated option (found by the option parser) as any other", async () => {
    const dir = await tempDir()
    const out = join(dir, 'out.json')
    const events = async (args: string[]) => {
      const lines: string[] = []
      const code = await runEventsCli(args, { out: (l) => lines.push(l), err: (l) => lines.push(l) })
      return { code, output: lines.join('\n') }
    }
    const cases: Array<[() => Promise<{ code: number; output: string }>, string]> = [
      [() => snapshot(['--flags', 'examples/flags.json', '--out', out, '--bogus']), "snapshot: Unknown option '--bogus'"],
      [() => snapshot(['--flags', 'examples/flags.json', '--out', out, '--out', out]), 'snapshot: --out is given 2 times'],
      [() => snapshot(['--flags', 'examples/flags.json']), 'snapshot: --out FILE is required'],
      [() => events(['replay-dead-letters', '--bogus']), "events: Unknown option '--bogus'"],
      [() => events(['replay-dead-letters', '--batch', '1', '--batch', '2']), 'events: --batch is given 2 times'],
    ]
    for (const [run, said] of cases) {
      const { code, output } = await run()
      expect(code).toBe(2)
      // The line's start: Node's own words follow "Unknown option '--bogus'".
      expect(output.slice(0, `[holdfast-server] ${said}`.length)).toBe(`[holdfast-server] ${said}`)
    }
  })
})

describe('holdfast-server snapshot (definitions)', () => {
  it('writes a definitions snapshot from --flags-url, and refuses every broken answer after it', async () => {
    const upstream = await startUpstream({ document: booleanFlags(10) })
    const out = join(await tempDir(), 'flags.snapshot.json')
    const first = await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', out])
    expect(first).toMatchObject({ code: 0 })
    expect(first.output).toMatch(/wrote .*10 flags/)
    const written = await readFile(out, 'utf8')
    expect(JSON.parse(written)).toMatchObject({ holdfastSnapshot: 1, kind: 'definitions', definitions: booleanFlags(10) })

    const broken = [
      [{ status: 503, text: 'down' }, /answered 503/],
      [{ status: 200, text: '<html>login</html>', contentType: 'text/html' }, /not valid JSON/],
      [{ status: 200, json: {} }, /"flags" object/],
      [{ status: 200, json: { flags: {} } }, /no flags/],
      [{ document: booleanFlags(1) }, /drops 9 of the 10 flags/],
      [{ status: 401, text: 'no' }, /answered 401/],
      ['reset', /127\.0\.0\.1/],
    ] as const
    for (const [behaviour, message] of broken) {
      upstream.set(behaviour)
      const result = await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', out])
      expect(result.code, JSON.stringify(behaviour)).toBe(1)
      expect(result.output).toMatch(message)
      expect(await readFile(out, 'utf8')).toBe(written)
    }
    // --max-shrink 100 lets an intended clean-up through.
    upstream.set({ document: booleanFlags(1) })
    expect((await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', out, '--max-shrink', '100'])).code).toBe(0)
  })

  it('snapshots a local --flags file, times out on a hanging upstream, and checks its usage', async () => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    expect((await snapshot(['--flags', file, '--out', join(dir, 'out.json')])).code).toBe(0)
    const upstream = await startUpstream('hang')
    const hung = await snapshot(['--flags-url', upstream.url, '--out', join(dir, 'out.json'), '--timeout', '0.3'])
    expect(hung).toMatchObject({ code: 1 })
    expect(hung.output).toMatch(/within 300 ms/)
    // Headers at once, then the body a byte at a time: the timeout covers the body too.
    upstream.set('drip')
    const written = await readFile(join(dir, 'out.json'), 'utf8')
    const started = Date.now()
    const dripped = await snapshot(['--flags-url', upstream.url, '--out', join(dir, 'out.json'), '--timeout', '0.3'])
    expect(dripped).toMatchObject({ code: 1 })
    expect(Date.now() - started).toBeLessThan(3000)
    expect(await readFile(join(dir, 'out.json'), 'utf8')).toBe(written)
    expect((await snapshot(['--out', join(dir, 'x.json')])).code).toBe(2)
    expect((await snapshot(['--flags', file])).code).toBe(2)
    // Numbers are read as strictly as the server's options: '' was 0 (no flag may go), '0x10' 16.
    for (const [name, value] of [['--max-shrink', ''], ['--max-shrink', '0x10'], ['--max-shrink', ' 5 '], ['--max-shrink', '1e1'], ['--timeout', '0x10'], ['--timeout', ' 5'], ['--timeout', 'Infinity']]) {
      const bad = await snapshot(['--flags', file, '--out', join(dir, 'x.json'), name, value])
      expect(bad, `${name} ${JSON.stringify(value)}`).toMatchObject({ code: 2, output: expect.stringMatching(new RegExp(`${name} must be`)) })
    }
    // Which of two --out files was meant cannot be known: neither is written.
    const twice = await snapshot(['--flags', file, '--out', join(dir, 'a.json'), '--out', join(dir, 'b.json')])
    expect(twice).toMatchObject({ code: 2, output: expect.stringMatching(/--out is given 2 times/) })
    expect((await snapshot(['--upstream', upstream.url, '--out', join(dir, 'x.json')])).code).toBe(2)
    expect((await snapshot(['--upstream', upstream.url, '--context', '{"plan":"pro"}', '--out', join(dir, 'x.json')])).code).toBe(2)
  })
})

describe('holdfast-server snapshot --upstream (a Bootstrap for fallback)', () => {
  it('writes the values for one context, and refuses empty, HTML or shrunken answers', async () => {
    const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `f${i}`, value: i, reason: 'STATIC', variant: 'v' }))
    const upstream = await startUpstream({ ofrep: () => ({ flags: [...entries(4), { key: 'broken', errorCode: 'PARSE_ERROR' }] }) })
    const out = join(await tempDir(), 'fallback.json')
    const context = JSON.stringify({ targetingKey: 'anonymous', plan: 'free' })
    // `broken` has no value: written without it only when asked (snapshot-partial.test.ts).
    const args = ['--upstream', upstream.url, '--context', context, '--out', out, '--header', 'Authorization: Bearer ci-key', '--allow-partial']
    const ok = await snapshot(args)
    expect(ok.code).toBe(0)
    expect(upstream.requests.at(-1)).toMatchObject({ method: 'POST', path: '/ofrep/v1/evaluate/flags' })
    expect(upstream.requests.at(-1)!.headers.authorization).toBe('Bearer ci-key')
    expect(JSON.parse(upstream.requests.at(-1)!.body)).toEqual({ context: JSON.parse(context) })
    const bootstrap = JSON.parse(await readFile(out, 'utf8'))
    expect(bootstrap).toMatchObject({ context: { targetingKey: 'anonymous', plan: 'free' }, fetchedAt: expect.any(Number), etag: expect.any(String) })
    expect(bootstrap.flags.map((f: { key: string }) => f.key)).toEqual(['f0', 'f1', 'f2', 'f3'])
    // The published Bootstrap format (the JSON Schema comes from this zod schema).
    expect(bootstrapSchema.safeParse(bootstrap).success).toBe(true)
    const written = await readFile(out, 'utf8')
    for (const behaviour of [{ status: 200, json: { flags: [] } }, { status: 200, text: '<html/>', contentType: 'text/html' }, { ofrep: () => ({ flags: entries(1) }) }, { status: 500, text: '' }] as const) {
      upstream.set(behaviour)
      expect((await snapshot(args)).code, JSON.stringify(behaviour)).toBe(1)
      expect(await readFile(out, 'utf8')).toBe(written)
    }
  })
})

describe('holdfast-server snapshot --upstream of a server that writes every optional field empty', () => {
  it('writes its values (errorCode "" beside a value is a success); an entry with errorCode "" and no value is a PARSE_ERROR, named, left out with --allow-partial', async () => {
    // Before: every entry read as a per-flag error and was left out, so the CI step always failed
    // ("zero flags") against a Go or Java OFREP server without `omitempty`.
    const empty = { reason: 'STATIC', variant: '', errorCode: '', errorDetails: '', metadata: null }
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'a', value: true, ...empty }, { key: 'b', value: 2, ...empty }, { key: 'c', ...empty }] }) })
    const out = join(await tempDir(), 'fallback.json')
    const args = ['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out]
    const refused = await snapshot(args)
    expect(refused.code, refused.output).toBe(1)
    expect(refused.output).toContain('"c" (PARSE_ERROR')
    const result = await snapshot([...args, '--allow-partial'])
    expect(result.code, result.output).toBe(0)
    const bootstrap = JSON.parse(await readFile(out, 'utf8'))
    expect(bootstrap.flags.map((f: Record<string, unknown>) => [f.key, f.value, f.errorCode])).toEqual([['a', true, undefined], ['b', 2, undefined]])
  })
})

describe('holdfast-server snapshot and redirects', () => {
  it('refuses a redirect to another host (exit 1, file untouched, the headers never sent there); follows one on the same host', async () => {
    const entries = (n: number, value: boolean) => Array.from({ length: n }, (_, i) => ({ key: `f${i}`, value }))
    // Another host with a perfectly valid answer: every kill switch off.
    const other = await startUpstream((request) => (request.method === 'POST' ? { ofrep: () => ({ flags: entries(4, false) }) } : { document: booleanFlags(10, 'off') }))
    const elsewhere = other.url.replace('127.0.0.1', 'localhost')
    const upstream = await startUpstream((request) => (request.method === 'POST' ? { ofrep: () => ({ flags: entries(4, true) }) } : { document: booleanFlags(10) }))
    const dir = await tempDir()
    const cases = [
      { out: join(dir, 'fallback.json'), args: ['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}'] },
      { out: join(dir, 'flags.snapshot.json'), args: ['--flags-url', `${upstream.url}/flags.json`] },
    ]
    for (const { out, args } of cases) {
      const all = [...args, '--out', out, '--header', 'X-API-Key: ci-key']
      expect((await snapshot(all)).code).toBe(0)
      const written = await readFile(out, 'utf8')
      upstream.set((request) => ({ status: 307, headers: { Location: `${elsewhere}${request.path}` } }))
      const redirected = await snapshot(all)
      expect(redirected.code, args[0]).toBe(1)
      expect(redirected.output).toMatch(/redirect/)
      expect(await readFile(out, 'utf8')).toBe(written)
      expect(other.requests).toEqual([])

      // A moved path on the same host is followed, with the POST body and the headers.
      upstream.set((request) =>
        request.path.startsWith('/v2/')
          ? request.method === 'POST' ? { ofrep: () => ({ flags: entries(4, true) }) } : { document: booleanFlags(10) }
          : { status: 308, headers: { Location: `/v2${request.path}` } },
      )
      expect((await snapshot(all)).code, args[0]).toBe(0)
      expect(upstream.requests.at(-1)!.path).toMatch(/^\/v2\//)
      expect(upstream.requests.at(-1)!.headers['x-api-key']).toBe('ci-key')
    }
  })
})

describe('snapshot paths that are not regular files', () => {
  it('a FIFO as --flags, as --out or as --snapshot is refused at once, not waited on forever', async () => {
    // Reading a FIFO blocks until a writer comes: the CI step hung with no output, and a relay
    // given one as --snapshot never started. Opening it for writing lets a stuck reader go.
    const dir = await tempDir()
    const pipe = join(dir, 'fifo.json')
    execFileSync('mkfifo', [pipe])
    const within = <T>(promise: Promise<T>, ms: number): Promise<T> =>
      Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms))])
    const upstream = await startUpstream({ document: booleanFlags(3) })
    try {
      const fromFifo = await within(snapshot(['--flags', pipe, '--out', join(dir, 'out.json')]), 2000)
      expect(fromFifo.code).toBe(1)
      expect(fromFifo.output).toMatch(/cannot read .*fifo\.json \(not a regular file: a FIFO\)/)
      // An --out that is a FIFO is not read for the shrink check; the new file replaces it.
      expect((await within(snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', pipe]), 2000)).code).toBe(0)
      expect(JSON.parse(await readFile(pipe, 'utf8'))).toMatchObject({ kind: 'definitions' })
      const second = join(dir, 'fifo2.json')
      execFileSync('mkfifo', [second])
      await expect(within(startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, snapshot: second }), 2000)).rejects.toThrow(/cannot read the snapshot .*fifo2\.json \(not a regular file: a FIFO\)/)
    } finally {
      for (const name of ['fifo.json', 'fifo2.json']) {
        try {
          closeSync(openSync(join(dir, name), constants.O_WRONLY | constants.O_NONBLOCK))
        } catch {
          // no reader waiting (or no longer a FIFO)
        }
      }
    }
  })
})

describe('snapshot --out through a symlink', () => {
  it('writes the file the link names (atomically, beside it) and keeps the link', async () => {
    // The link itself was replaced by a regular file: "wrote out.json" was printed, yet the file it
    // named (the one a relay's --snapshot or the next build reads) kept the old snapshot.
    const dir = await tempDir()
    await mkdir(join(dir, 'shared'))
    const target = join(dir, 'shared', 'flags.snapshot.json')
    const link = join(dir, 'flags.snapshot.json')
    const upstream = await startUpstream({ document: booleanFlags(3) })
    expect((await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', target])).code).toBe(0)
    await symlink(join('shared', 'flags.snapshot.json'), link)
    upstream.set({ document: booleanFlags(3, 'off') })
    expect((await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', link])).code).toBe(0)
    expect((await lstat(link)).isSymbolicLink()).toBe(true)
    expect(JSON.parse(await readFile(target, 'utf8')).definitions).toEqual(booleanFlags(3, 'off'))
    // The shrink guard reads the same file it would replace.
    upstream.set({ document: booleanFlags(1, 'off') })
    expect((await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', link])).code).toBe(1)
    expect(JSON.parse(await readFile(target, 'utf8')).definitions).toEqual(booleanFlags(3, 'off'))
  })
})

describe('snapshot --out over a bare flagd document', () => {
  it('the shrink guard counts the flags of a bare flagd document in FILE (which --snapshot accepts) too', async () => {
    // Only the command's own format was read back: over a hand-placed flagd file (a valid
    // --snapshot), a gutted upstream document was written without a check.
    const dir = await tempDir()
    const out = join(dir, 'flags.snapshot.json')
    const bare = JSON.stringify(booleanFlags(10))
    await writeFile(out, bare)
    const upstream = await startUpstream({ document: booleanFlags(1) })
    const result = await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', out])
    expect(result).toMatchObject({ code: 1, output: expect.stringMatching(/drops 9 of the 10 flags/) })
    expect(await readFile(out, 'utf8')).toBe(bare)
    upstream.set({ document: booleanFlags(10, 'off') })
    expect((await snapshot(['--flags-url', `${upstream.url}/flags.json`, '--out', out])).code).toBe(0)
  })
})

describe('snapshot --out naming the --flags file', () => {
  it('is refused (exit 2), the flags file untouched, also through a symlink', async () => {
    // It replaced the flagd file with a snapshot wrapper, which is not a flagd document: the
    // server watching that file refused every reload from then on and could not restart.
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    const text = JSON.stringify(booleanFlags(3))
    await writeFile(file, text)
    await symlink('flags.json', join(dir, 'link.json'))
    for (const out of [file, join(dir, '.', 'flags.json'), join(dir, 'link.json')]) {
      const result = await snapshot(['--flags', file, '--out', out])
      expect(result, out).toMatchObject({ code: 2, output: expect.stringMatching(/--out is the --flags file/) })
      expect(await readFile(file, 'utf8')).toBe(text)
    }
  })
})

describe('snapshot --out holding the other kind of snapshot', () => {
  it('definitions over a Bootstrap, or a Bootstrap over definitions, is refused (exit 1, FILE untouched)', async () => {
    // Neither guard read the other kind: a mistyped --out replaced the relay's --snapshot with one
    // user's values (the relay then refused to start) or a browser fallback with definitions.
    const dir = await tempDir()
    const definitions = join(dir, 'flags.snapshot.json')
    const fallback = join(dir, 'fallback.json')
    const upstream = await startUpstream((request) => (request.method === 'POST' ? { ofrep: () => ({ flags: [{ key: 'f0', value: true }] }) } : { document: booleanFlags(3) }))
    const values = ['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}']
    const defs = ['--flags-url', `${upstream.url}/flags.json`]
    expect((await snapshot([...defs, '--out', definitions])).code).toBe(0)
    expect((await snapshot([...values, '--out', fallback])).code).toBe(0)
    for (const [args, out, message] of [[values, definitions, /holds definitions/], [defs, fallback, /holds one user's values/]] as const) {
      const before = await readFile(out, 'utf8')
      const result = await snapshot([...args, '--out', out])
      expect(result, out).toMatchObject({ code: 1, output: expect.stringMatching(message) })
      expect(await readFile(out, 'utf8')).toBe(before)
    }
  })
})

describe('a --snapshot path named by mistake', () => {
  it('a file far larger than any snapshot (a log, a disk image) is refused at start by its size, not read whole', async () => {
    // Before: read whole into memory (hundreds of MB at start), then refused as "not valid JSON".
    const dir = await tempDir()
    const huge = join(dir, 'huge.json')
    await writeFile(huge, '')
    await truncate(huge, 65 * 1024 * 1024) // sparse: costs no disk
    const upstream = await startUpstream({ document: booleanFlags(3) })
    await expect(startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, snapshot: huge })).rejects.toThrow(/cannot read the snapshot .*huge\.json \(larger than 64 MiB: 68157440 bytes\)/)
  })
})
