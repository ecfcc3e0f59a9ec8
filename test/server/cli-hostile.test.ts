// holdfast-server as an operator meets it: a real child process given hostile option values. Each
// must work as documented or refuse to start (exit code ≠ 0, a message naming the option, no stack
// trace), never start half-configured: up and "serving" while every request is bound to fail.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagServer } from '@holdfast/server'
import type { CliValues } from '../../packages/server/src/cliOptions'
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { DEMO_FLAGS, recordingLogger, tempDir } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

const root = fileURLToPath(new URL('../..', import.meta.url))
const SOURCE_BIN = ['--import', 'tsx', 'packages/server/src/bin.ts']
const children: ChildProcess[] = []

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/**
 * Runs the CLI until it exits, or until it says it is serving (then it is killed: it started).
 * Resolves with the exit code (`'started'` for a server that came up) and everything it printed.
 */
function outcome(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null | 'started'; output: string }> {
  const child = spawn(process.execPath, [...SOURCE_BIN, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  return new Promise((resolve) => {
    const take = (chunk: Buffer) => {
      output += chunk
      if (/serving .* at http/.test(output)) {
        child.kill('SIGKILL')
        resolve({ code: 'started', output })
      }
    }
    child.stdout!.on('data', take)
    child.stderr!.on('data', take)
    child.on('exit', (code) => resolve({ code, output }))
  })
}

const UPSTREAM = ['--upstream', 'http://127.0.0.1:1', '--port', '0']
const FLAGS = ['--flags', 'examples/flags.json', '--port', '0']

describe('holdfast-server refuses what would start it half-configured', { timeout: 60_000 }, () => {
  it('--forward-header naming a header the relay writes itself (Content-Type, Content-Length, Host, …) is refused, not forwarded into every upstream request', async () => {
    // Forwarded, the caller's `content-type` went up beside the relay's own `Content-Type`
    // ("application/json, application/json": 415 from the upstream) and its `content-length` did
    // not match the body the relay sends (undici refuses the request): every user got 503 from a
    // relay that had started without a word.
    const names = ['Content-Type', 'content-length']
    const runs = await Promise.all(names.map((name) => outcome([...UPSTREAM, '--forward-header', 'Authorization', '--forward-header', name])))
    for (const [i, run] of runs.entries()) {
      expect(run.code, names[i]).toBe(2)
      expect(run.output).toMatch(new RegExp(`--forward-header ${names[i]}: .*cannot be forwarded`, 'i'))
      expect(run.output).not.toMatch(/\n\s+at /)
    }
    for (const name of ['Host', 'Transfer-Encoding', 'Connection', 'If-None-Match', 'accept']) {
      expect(buildServerOptions({ upstream: 'http://127.0.0.1:1', 'forward-header': [name] }, {}), name).toMatchObject({ ok: false, error: expect.stringMatching(/cannot be forwarded/) })
    }
    // The same in code.
    await expect(createFlagServer({ upstream: 'http://127.0.0.1:1', forwardHeaders: ['X-Tenant', 'Content-Type'], port: 0, logger: recordingLogger() })).rejects.toThrow(
      /forwardHeaders: Content-Type cannot be forwarded/,
    )
    // Ordinary names still start.
    expect((await outcome([...UPSTREAM, '--forward-header', 'Authorization', '--forward-header', 'X-Tenant'])).code).toBe('started')
  })

  it('an API or admin key no client can present (non-ASCII, a control character) is refused, naming the option or variable', async () => {
    // Node reads header bytes as Latin-1 and fetch refuses any character past U+00FF: a server
    // started with `--api-key ключ` answered 401 to every request, whatever the client sent.
    const cases = [
      { args: [...FLAGS, '--api-key', 'ключ'], message: /--api-key .*printable ASCII/ },
      { args: [...FLAGS, '--events-upstream', 'http://127.0.0.1:1/events'], env: { HOLDFAST_EVENTS_UPSTREAM_KEY: 'ключ' }, message: /HOLDFAST_EVENTS_UPSTREAM_KEY .*printable ASCII/ },
      // Whitespace around a key (a secret file's trailing newline) was refused, but as "apiKey",
      // the name in code, exit 1: the operator's option or variable is named now.
      { args: [...FLAGS, '--api-key', ' k '], message: /--api-key starts or ends with whitespace/ },
    ]
    // The same check, without a process each.
    const flags = { flags: 'examples/flags.json' }
    const more: Array<[CliValues, NodeJS.ProcessEnv, RegExp]> = [
      [{ ...flags, 'api-key': 'a\nb' }, {}, /--api-key .*printable ASCII/],
      [{ ...flags, 'admin-key': 'clé' }, {}, /--admin-key .*printable ASCII/],
      [flags, { HOLDFAST_API_KEY: 'ключ' }, /HOLDFAST_API_KEY .*printable ASCII/],
      [flags, { HOLDFAST_ADMIN_KEY: 'k\n' }, /HOLDFAST_ADMIN_KEY starts or ends with whitespace/],
    ]
    for (const [values, env, message] of more) expect(buildServerOptions(values, env), JSON.stringify([values, env])).toMatchObject({ ok: false, error: expect.stringMatching(message) })
    // A key with inner spaces and punctuation is presentable, and starts.
    const [presentable, ...runs] = await Promise.all([outcome([...FLAGS, '--api-key', 'a b!~']), ...cases.map(({ args, env }) => outcome(args, env))])
    for (const [i, run] of runs.entries()) {
      expect(run.code, cases[i].args.join(' ')).toBe(2)
      expect(run.output).toMatch(cases[i].message)
    }
    expect(presentable.code).toBe('started')
    await expect(createFlagServer({ flags: DEMO_FLAGS, apiKey: 'ключ', port: 0, logger: recordingLogger() })).rejects.toThrow(/apiKey: .*printable ASCII/)
    await expect(createFlagServer({ flags: DEMO_FLAGS, adminKey: 'ключ', port: 0, logger: recordingLogger() })).rejects.toThrow(/adminKey: .*printable ASCII/)
  })

  it('a source URL fetch can never request (user:password in it, a port past 65535, unparseable) is refused, not polled and failed forever', async () => {
    // The regex took each, the server said "serving http://user:pw@…" (password and all) and then
    // every poll, forwarded request or events batch failed: "Request cannot be constructed from a
    // URL that includes credentials", "Invalid URL".
    const cases = [
      { args: ['--flags-url', 'http://user:pw@127.0.0.1:1/flags.json', '--port', '0'], message: /--flags-url .*user:password/ },
      { args: ['--upstream', 'http://127.0.0.1:99999', '--port', '0'], message: /--upstream must be an http\(s\) URL/ },
      { args: ['--upstream', 'http://[::1', '--port', '0'], message: /--upstream must be an http\(s\) URL/ },
      { args: [...FLAGS, '--events-upstream', 'http://user:pw@127.0.0.1:1/events'], message: /--events-upstream .*user:password/ },
      { args: ['snapshot', '--flags-url', 'http://user:pw@127.0.0.1:1/flags.json', '--out', 'never-written.json'], message: /--flags-url .*user:password/ },
    ]
    // A token in the query string is fine, and the "serving" line does not print it.
    const [signed, ...runs] = await Promise.all([outcome(['--flags-url', 'http://127.0.0.1:1/flags.json?token=s3cret', '--port', '0']), ...cases.map(({ args }) => outcome(args))])
    for (const [i, run] of runs.entries()) {
      expect(run.code, cases[i].args.join(' ')).toBe(2)
      expect(run.output).toMatch(cases[i].message)
      expect(run.output).not.toMatch(/serving/)
    }
    expect(signed.code).toBe('started')
    expect(signed.output).toMatch(/serving http:\/\/127\.0\.0\.1:1\/flags\.json\?\S+ at/)
    expect(signed.output).not.toMatch(/s3cret/)
    await expect(createFlagServer({ flagsUrl: 'http://user:pw@127.0.0.1:1/flags.json', port: 0, logger: recordingLogger() })).rejects.toThrow(/flagsUrl .*user:password/)
  })

  it('an --events-file or --events-spool it cannot use exits 1 saying which and why, not a bare "EEXIST … mkdir"', async () => {
    const dir = await tempDir()
    const file = join(dir, 'a-file')
    await writeFile(file, '')
    // Before: "EISDIR: illegal operation on a directory, read" and "EEXIST: file already exists,
    // mkdir '…/a-file'" — neither said it was about the events file, nor what to change.
    const cases = [
      { args: [...FLAGS, '--events-file', dir], message: new RegExp(`cannot use the events file ${dir}: EISDIR, it is a directory`) },
      { args: [...FLAGS, '--events-file', join(file, 'events.jsonl')], message: new RegExp(`cannot use the events file ${file}/events\\.jsonl: .*a-file is a file, not a directory`) },
      { args: [...FLAGS, '--events-upstream', 'http://127.0.0.1:1/events', '--events-spool', file], message: new RegExp(`cannot use the events spool ${file}: .*a-file is a file, not a directory`) },
    ]
    const runs = await Promise.all(cases.map(({ args }) => outcome(args)))
    for (const [i, run] of runs.entries()) {
      expect(run.code, cases[i].args.join(' ')).toBe(1)
      expect(run.output).toMatch(cases[i].message)
    }
    // A directory it may not write in (sysfs refuses new files even to root; a read-only mount says
    // EROFS): the lock file beside the events file cannot be made. Before, that read "the events
    // file … is in use by another server (EACCES …). … or delete …/holdfast-events.jsonl.lock": the
    // operator went looking for a second server, and a lock file, that never existed.
    for (const args of [
      [...FLAGS, '--events-file', '/sys/holdfast-events.jsonl'],
      [...FLAGS, '--events-upstream', 'http://127.0.0.1:1/events', '--events-spool', '/sys'],
    ]) {
      const run = await outcome(args)
      expect(run.code, args.join(' ')).toBe(1)
      expect(run.output).toMatch(/cannot use the events (file \/sys\/holdfast-events\.jsonl|spool \/sys): ((EACCES|EPERM), permission denied|EROFS, a read-only file system)/)
      expect(run.output).not.toMatch(/in use by another server/)
    }
    // A directory that does not exist yet is made.
    const fresh = join(dir, 'new', 'events.jsonl')
    expect((await outcome([...FLAGS, '--events-file', fresh])).code).toBe('started')
  })

  it('an option that would do nothing with the others given is refused, not silently ignored', async () => {
    // As --redis-lease-ttl without --redis already was. Before, each started and did nothing:
    // `--forward-header X-Tenant` on a --flags-url relay (the operator believes answers are keyed by
    // tenant), `--events-spool` without --events-upstream (no spool, events go nowhere it names).
    const run = await outcome(['--flags-url', 'http://127.0.0.1:1/flags.json', '--port', '0', '--forward-header', 'X-Tenant'])
    expect(run.code).toBe(2)
    expect(run.output).toMatch(/--forward-header goes with --upstream/)
    // The same check, without a process each (the one above shows how it reaches the operator).
    const flags = { flags: 'examples/flags.json' }
    const cases: Array<[CliValues, NodeJS.ProcessEnv, RegExp]> = [
      [{ ...flags, 'poll-interval': '5' }, {}, /--poll-interval goes with --flags-url or --upstream/],
      [{ ...flags, 'events-spool': 'spool' }, {}, /--events-spool goes with --events-upstream/],
      [{ ...flags, 'events-keep': '3' }, {}, /--events-keep goes with --events-file/],
      [{ ...flags, 'events-max-bytes': '1000' }, {}, /--events-max-bytes goes with --events-file/],
      [{ ...flags, 'no-live-updates': true, 'max-streams': '5' }, {}, /--max-streams .*--no-live-updates/],
      // A local file has no upstream to time out or to answer 401: before, both started and did
      // nothing (`--on-upstream-unauthorized clear` on a --flags server never clears anything).
      [{ ...flags, 'on-upstream-unauthorized': 'clear' }, {}, /--on-upstream-unauthorized goes with --flags-url or --upstream/],
      [{ ...flags, 'upstream-timeout': '2' }, {}, /--upstream-timeout goes with --flags-url or --upstream/],
      // Set for a fleet of relays, read by a --flags server: it said "--redis goes with …", an
      // option nobody had typed.
      [flags, { HOLDFAST_REDIS_URL: 'redis://127.0.0.1:1' }, /HOLDFAST_REDIS_URL is set, and --redis goes with --flags-url or --upstream/],
    ]
    for (const [values, env, message] of cases) expect(buildServerOptions(values, env), JSON.stringify(values)).toMatchObject({ ok: false, error: expect.stringMatching(message) })
    // Where they do apply, they pass.
    expect(buildServerOptions({ upstream: 'http://127.0.0.1:1', 'forward-header': ['X-Tenant'], 'poll-interval': '5' }, {}).ok).toBe(true)
    expect(buildServerOptions({ 'flags-url': 'http://127.0.0.1:1/f.json', 'on-upstream-unauthorized': 'clear-after=60', 'upstream-timeout': '2' }, {}).ok).toBe(true)
    expect(buildServerOptions({ ...flags, 'events-file': 'e.jsonl', 'events-keep': '3', 'events-max-bytes': '1000', 'max-streams': '5' }, {}).ok).toBe(true)
  })

  it('--redis-lease-ttl on a proxy-mode relay (--upstream) is refused: there is no lease to tune there', async () => {
    // In proxy mode every relay forwards its own requests and shares the answers; no relay polls for
    // the others, so there is no lease. Before, `--upstream … --redis … --redis-lease-ttl 3` started
    // and did nothing: an operator who set it believed failover was tuned to 3 s.
    const redis = { upstream: 'http://127.0.0.1:1', redis: 'redis://127.0.0.1:1' }
    expect(buildServerOptions({ ...redis, 'redis-lease-ttl': '3' }, {})).toMatchObject({ ok: false, error: expect.stringMatching(/--redis-lease-ttl goes with --flags-url/) })
    expect(buildServerOptions({ upstream: redis.upstream, 'redis-lease-ttl': '3' }, { HOLDFAST_REDIS_URL: redis.redis })).toMatchObject({ ok: false, error: expect.stringMatching(/--redis-lease-ttl goes with --flags-url/) })
    // Where it applies (--flags-url with Redis), it passes; proxy mode with Redis alone too.
    expect(buildServerOptions({ 'flags-url': 'http://127.0.0.1:1/f.json', redis: redis.redis, 'redis-lease-ttl': '3' }, {}).ok).toBe(true)
    expect(buildServerOptions(redis, {}).ok).toBe(true)
  })

  it('a port in use, or a host it cannot bind, exits 1 naming --port / --host', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    try {
      const port = (taken.address() as AddressInfo).port
      const inUse = await outcome(['--flags', 'examples/flags.json', '--port', String(port)])
      expect(inUse.code).toBe(1)
      expect(inUse.output).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(--host, --port\\): .*in use`))
      const badHost = await outcome(['--flags', 'examples/flags.json', '--port', '0', '--host', '192.0.2.1'])
      expect(badHost.code).toBe(1)
      expect(badHost.output).toMatch(/cannot listen on 192\.0\.2\.1:0 \(--host, --port\)/)
    } finally {
      taken.close()
    }
  })
})

describe('holdfast-server: a number option out of range says the range and what was given, not "must be a number"', () => {
  it('-5, 1e9, 101, a blank are refused naming the option and its range; .5 is a number', () => {
    // Before: `--max-shrink=-5` and `--poll-interval .5` were refused with "must be a number" (they
    // are numbers; the operator could not tell what was wanted), `--port=-1` "must be a whole number".
    const cases: Array<[CliValues, RegExp]> = [
      [{ flags: 'f.json', 'max-shrink': '-5' }, /^--max-shrink must be from 0 to 100 \(a number\), got "-5"$/],
      [{ flags: 'f.json', 'max-shrink': '101' }, /^--max-shrink must be from 0 to 100 \(a number\), got "101"$/],
      [{ flags: 'f.json', 'max-shrink': '' }, /^--max-shrink must be from 0 to 100 \(a number\), got ""$/],
      [{ 'flags-url': 'http://x/f.json', 'poll-interval': '1e9' }, /^--poll-interval must be from 0\.05 to 86400 \(a number\), got "1e9"$/],
      [{ 'flags-url': 'http://x/f.json', 'poll-interval': '-1' }, /^--poll-interval must be from 0\.05 to 86400 \(a number\), got "-1"$/],
      [{ upstream: 'http://x', 'upstream-timeout': 'abc' }, /^--upstream-timeout must be from 0\.001 to 600 \(a number\), got "abc"$/],
      [{ flags: 'f.json', port: '-1' }, /^--port must be from 0 to 65535 \(a whole number\), got "-1"$/],
      [{ flags: 'f.json', port: '70000' }, /^--port must be from 0 to 65535 \(a whole number\), got "70000"$/],
      // A bound of 0 or less would drop every refused event; NaN or a blank would leave the file unbounded.
      ...['0', '-5', '1023', '1.5', 'abc', '', '1e400'].map((value): [CliValues, RegExp] => [
        { flags: 'f.json', 'events-upstream': 'http://x/events', 'events-dead-letter-max-bytes': value },
        new RegExp(`^--events-dead-letter-max-bytes must be from 1024 to 9007199254740991 \\(a whole number\\), got "${value.replace('.', '\\.')}"$`),
      ]),
    ]
    for (const [values, message] of cases) {
      const result = buildServerOptions(values, {})
      expect(result.ok, JSON.stringify(values)).toBe(false)
      expect((result as { error: string }).error, JSON.stringify(values)).toMatch(message)
    }
    expect(buildServerOptions({ 'flags-url': 'http://x/f.json', 'poll-interval': '.5' }, {})).toMatchObject({ ok: true, options: { pollIntervalSeconds: 0.5 } })
    expect(buildServerOptions({ flags: 'f.json', 'events-upstream': 'http://x/events', 'events-dead-letter-max-bytes': '1024' }, {})).toMatchObject({ ok: true, options: { eventsDeadLetterMaxBytes: 1024 } })
  })

  it('eventsDeadLetterMaxBytes of NaN, 0, -1, 1.5 or Infinity is refused by createFlagServer naming the option, before anything listens', async () => {
    for (const eventsDeadLetterMaxBytes of [Number.NaN, 0, -1, 1.5, Number.POSITIVE_INFINITY]) {
      await expect(createFlagServer({ flags: DEMO_FLAGS, eventsUpstream: 'http://127.0.0.1:9/events', eventsDeadLetterMaxBytes, port: 0, host: '127.0.0.1' }), String(eventsDeadLetterMaxBytes)).rejects.toThrow(/eventsDeadLetterMaxBytes/)
    }
  })
})

describe('holdfast-server: a negative number after an option, without `=`', { timeout: 60_000 }, () => {
  it('is read as that option\'s value and refused naming the option and its range (exit 2), not "argument is ambiguous"', async () => {
    // Before: `--max-shrink -5` printed Node's "Option '--max-shrink' argument is ambiguous. Did you
    // forget to specify the option argument…? use '--max-shrink=-XYZ'", which names no range.
    const cases = [
      { args: [...FLAGS, '--max-shrink', '-5'], message: /--max-shrink must be from 0 to 100 \(a number\), got "-5"/ },
      { args: ['--flags', 'examples/flags.json', '--port', '-1'], message: /--port must be from 0 to 65535 \(a whole number\), got "-1"/ },
      { args: [...UPSTREAM, '--upstream-timeout', '-.5'], message: /--upstream-timeout must be from 0\.001 to 600 \(a number\), got "-\.5"/ },
      { args: ['snapshot', '--flags', 'examples/flags.json', '--out', 'never-written.json', '--max-shrink', '-5'], message: /--max-shrink must be a number from 0 to 100/ },
      { args: ['snapshot', '--flags', 'examples/flags.json', '--out', 'never-written.json', '--timeout', '-1'], message: /--timeout must be a number of seconds from 0 to 600/ },
    ]
    const runs = await Promise.all(cases.map(({ args }) => outcome(args)))
    for (const [i, run] of runs.entries()) {
      expect(run.code, cases[i].args.join(' ')).toBe(2)
      expect(run.output).toMatch(cases[i].message)
      expect(run.output).not.toMatch(/ambiguous/)
    }
    // An option's value that is not a number is still what it was: `--flags -x` names an option.
    expect((await outcome(['--flags', '-x'])).output).toMatch(/ambiguous|Unknown option/)
  })
})

describe('holdfast-server snapshot: a bad --header or source URL is a usage error (exit 2), a missing --out directory not written (exit 3), neither a refusal from the upstream', { timeout: 60_000 }, () => {
  it('names --header / --flags-url / --upstream, exits 2 and leaves --out untouched', async () => {
    const dir = await tempDir()
    const out = join(dir, 'fallback.json')
    await writeFile(out, 'the old file\n')
    const context = ['--context', '{"targetingKey":"ci"}', '--out', out]
    // Before, each went out as a request and came back exit 1 "snapshot refused:
    // … Headers.append: "Bad Name" is an invalid header name" (or a ByteString error), as though
    // the flag service had failed; a CI log pointed at the service, not at the step's own typo.
    const cases = [
      { args: ['snapshot', '--upstream', 'http://127.0.0.1:1', '--header', 'Bad Name: v', ...context], message: /--header .*"Bad Name" is not a header name/ },
      { args: ['snapshot', '--upstream', 'http://127.0.0.1:1', '--header', 'Authorization: Bearer ключ', ...context], message: /--header Authorization: .*printable ASCII/ },
      { args: ['snapshot', '--upstream', 'http://127.0.0.1:1', '--header', 'Content-Length: 3', ...context], message: /--header Content-Length: .*cannot be set/ },
      { args: ['snapshot', '--upstream', 'ftp://127.0.0.1:1', ...context], message: /--upstream must be an http\(s\) URL/ },
      { args: ['snapshot', '--flags-url', 'flags.example.com/flags.json', '--out', out], message: /--flags-url must be an http\(s\) URL/ },
    ]
    const runs = await Promise.all(cases.map(({ args }) => outcome(args)))
    for (const [i, run] of runs.entries()) {
      expect(run.code, cases[i].args.join(' ')).toBe(2)
      expect(run.output).toMatch(cases[i].message)
    }
    expect(await readFile(out, 'utf8')).toBe('the old file\n')
  })

  it('an --out whose directory does not exist (or is a file) exits 3, not written, naming the directory, before the source is asked', async () => {
    const dir = await tempDir()
    const file = join(dir, 'a-file')
    await writeFile(file, 'x\n')
    const upstream = await startUpstream({ document: booleanFlags(1) })
    // A directory missing on this runner (a step that makes it skipped, a typo) is the step's own
    // disk, as a full one is: the same command line writes once it exists. Before: exit 2, the
    // usage error, with the help text, as though the command line were wrong. And before that,
    // the upstream was asked, then exit 1 "snapshot refused: cannot write …: ENOENT".
    const missing = join(dir, 'no-such-dir')
    const cases = [
      { args: ['snapshot', '--upstream', upstream.url, '--context', '{"targetingKey":"ci"}', '--out', join(missing, 'fallback.json')], directory: missing, message: /snapshot not written: --out .*: the directory .*no-such-dir does not exist/ },
      { args: ['snapshot', '--flags-url', `${upstream.url}/flags.json`, '--out', join(file, 'flags.snapshot.json')], directory: file, message: /snapshot not written: --out .*: .*a-file is not a directory/ },
    ]
    const runs = await Promise.all(cases.map(({ args }) => outcome(args)))
    for (const [i, run] of runs.entries()) {
      expect({ code: run.code, output: run.output }, cases[i].args.join(' ')).toEqual({ code: 3, output: expect.stringMatching(cases[i].message) })
      expect(run.output).toContain(cases[i].directory)
      expect(run.output).not.toMatch(/Usage:/)
    }
    expect(upstream.requests).toEqual([])
    await upstream.close()
  })

  it('a command line that is wrong is a usage error (exit 2) whether or not the --out directory exists yet', async () => {
    const missing = join(await tempDir(), 'no-such-dir', 'out.json')
    // Before: exit 3 "not written: the directory … does not exist" for each, the command line's own
    // mistake hidden behind the disk's; once the directory was made, exit 2 after all.
    const cases: Array<[string[], RegExp]> = [
      [['--upstream', 'http://127.0.0.1:9', '--out', missing], /--upstream needs --context/],
      [['--upstream', 'http://127.0.0.1:9', '--context', '{', '--out', missing], /--context is not valid JSON/],
      [['--flags-url', 'http://127.0.0.1:9/flags.json', '--context', '{"targetingKey":"ci"}', '--out', missing], /--context only goes with --upstream/],
    ]
    for (const [args, message] of cases) {
      const lines: string[] = []
      const code = await runSnapshotCli(args, { out: (line) => lines.push(line), err: (line) => lines.push(line) })
      expect({ code, said: lines.join('\n') }, args.join(' ')).toEqual({ code: 2, said: expect.stringMatching(message) })
    }
  })
})

describe('holdfast-server snapshot: what it prints', { timeout: 30_000 }, () => {
  it('names at most a few changed flags, not every one of thousands on one line of the CI log', async () => {
    const dir = await tempDir()
    const flags = join(dir, 'flags.json')
    const definitions = (n: number) => ({ flags: Object.fromEntries(Array.from({ length: n }, (_, i) => [`flag-${i}`, { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' }])) })
    await writeFile(flags, JSON.stringify(definitions(5000)))
    // Before: "changed: flag-0, flag-1, … flag-4999", a 60 KB line.
    const run = await outcome(['snapshot', '--flags', flags, '--out', join(dir, 'snapshot.json')])
    expect(run.code).toBe(0)
    expect(run.output).toMatch(/wrote .*: 5000 flags, version \S+ \(changed: flag-0, flag-1, .* and 4990 more\)/)
    expect(run.output.length).toBeLessThan(1000)
  })
})

describe('holdfast-server signals while the source hangs', { timeout: 30_000 }, () => {
  it('SIGTERM or SIGINT during a hanging poll drains and exits 0 at once, not after the upstream timeout', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3) })
    try {
      const dir = await tempDir()
      const snapshot = join(dir, 'flags.snapshot.json')
      expect((await outcome(['snapshot', '--flags-url', `${upstream.url}/flags.json`, '--out', snapshot])).code).toBe(0)
      upstream.set('hang')
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        const child = spawn(process.execPath, [...SOURCE_BIN, '--flags-url', `${upstream.url}/flags.json`, '--snapshot', snapshot, '--poll-interval', '0.05', '--upstream-timeout', '60', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
        children.push(child)
        let output = ''
        child.stdout!.on('data', (chunk) => (output += chunk))
        child.stderr!.on('data', (chunk) => (output += chunk))
        const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
        await new Promise<void>((resolve) => child.stdout!.on('data', () => /serving/.test(output) && resolve()))
        // A poll is in flight (and hangs) by now: the start asked at once.
        const asked = upstream.requests.length
        await new Promise<void>((resolve) => {
          const check = () => (upstream.requests.length > asked ? resolve() : setTimeout(check, 20))
          check()
        })
        const started = Date.now()
        child.kill(signal)
        expect(await exited, output).toBe(0)
        expect(Date.now() - started).toBeLessThan(5000)
        expect(output).toMatch(new RegExp(`${signal}: draining[\\s\\S]*stopped`))
      }
    } finally {
      await upstream.close()
    }
  })
})

describe('holdfast-server with nothing to serve and an upstream that hangs', { timeout: 30_000 }, () => {
  /** Starts the CLI; resolves once it says it is serving (or rejects with what it printed when it exits first). */
  function serve(args: string[]) {
    const child = spawn(process.execPath, [...SOURCE_BIN, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let output = ''
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const serving = new Promise<string>((resolve, reject) => {
      const take = (chunk: Buffer) => {
        output += chunk
        const url = /serving .* at (http\S+)/.exec(output)?.[1]
        if (url) resolve(url)
      }
      child.stdout!.on('data', take)
      child.stderr!.on('data', take)
      void exited.then((code) => reject(new Error(`exited ${code}: ${output}`)))
    })
    return { child, serving, exited, output: () => output }
  }

  // Before, the start waited the whole --upstream-timeout for the first answer before listening:
  // a minute of connection refused, /healthz too (a liveness probe restarting it in a loop), and
  // a SIGTERM in that minute killed it (exit 143) without a word.
  // Timed from the moment the started server asks the upstream, not from the spawn: loading the
  // CLI through tsx took seconds on a loaded CI machine (one run of both modes and the early signal
  // in a single test took 16 s), and is not what this is about.
  /** The first request the upstream got (the start asking), and an upstream that never answers. */
  async function hangingUpstream() {
    let first: () => void = () => undefined
    const asked = new Promise<number>((resolve) => (first = () => resolve(Date.now())))
    const upstream = await startUpstream(() => {
      first()
      return 'hang'
    })
    return { upstream, asked }
  }
  /** `serving` if it says so within `ms`, else a failure naming the wait. */
  function within(serving: Promise<string>, ms: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not listening ${ms} ms after it asked the upstream (--upstream-timeout 60)`)), ms)))
    return Promise.race([serving, late]).finally(() => clearTimeout(timer))
  }

  for (const mode of ['--upstream', '--flags-url'] as const) {
    it(`${mode}: listens within seconds of asking (alive, not ready: 503 + Retry-After), not after --upstream-timeout; SIGTERM drains and exits 0`, async () => {
      const { upstream, asked } = await hangingUpstream()
      try {
        const run = serve([mode, mode === '--upstream' ? upstream.url : `${upstream.url}/flags.json`, '--upstream-timeout', '60', '--port', '0'])
        await asked
        // The start gives a hanging upstream 2 s; 10 s is that and a loaded machine, 50 s short of the timeout.
        const url = await within(run.serving, 10_000)
        expect((await fetch(`${url}/healthz`)).status).toBe(200)
        expect((await fetch(`${url}/readyz`)).status).toBe(503)
        // Definitions mode: nothing to evaluate with yet. (Proxy mode forwards a new context's
        // request, which waits out --upstream-timeout as any forwarded request does.)
        if (mode === '--flags-url') {
          const answer = await fetch(`${url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ context: { targetingKey: 'u' } }) })
          expect(answer.status).toBe(503)
          expect(answer.headers.get('retry-after')).toMatch(/^\d+$/)
        }
        run.child.kill('SIGTERM')
        expect(await run.exited, run.output()).toBe(0)
        expect(run.output()).toMatch(/SIGTERM: draining[\s\S]*stopped/)
      } finally {
        await upstream.close()
      }
    })
  }

  it('a signal before it listens (here: as soon as it asks the upstream) is not a bare kill either: it stops cleanly, exit 0', async () => {
    const { upstream, asked } = await hangingUpstream()
    try {
      const early = serve(['--upstream', upstream.url, '--upstream-timeout', '60', '--port', '0'])
      early.serving.catch(() => undefined)
      await asked
      early.child.kill('SIGTERM')
      expect(await early.exited, early.output()).toBe(0)
      expect(early.output()).toMatch(/SIGTERM[\s\S]*stopped/)
    } finally {
      await upstream.close()
    }
  })

  it('SIGHUP (the terminal that started it closed) drains and exits 0, as SIGTERM does', async () => {
    const run = serve(['--flags', 'examples/flags.json', '--port', '0'])
    await run.serving
    run.child.kill('SIGHUP')
    expect(await run.exited, run.output()).toBe(0)
    expect(run.output()).toMatch(/SIGHUP: draining[\s\S]*stopped/)
  })
})
