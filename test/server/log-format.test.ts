// --log-format and --log-level (and HOLDFAST_LOG_FORMAT, HOLDFAST_LOG_LEVEL), as an operator runs
// holdfast-server: what its log reader then gets.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers'
import { serverExit } from './events-process'
import { relay } from './log-relay'
import { startUpstream } from './relay-fakes'

const linesOf = (output: string) => output.split('\n').filter((line) => line !== '')

describe('holdfast-server --log-format, --log-level', () => {
  it('json: one object a line, {time, level, msg}, info and warnings alike, down to "stopped"', async () => {
    const upstream = await startUpstream({ status: 503, text: 'down' })
    const server = await relay(['--flags-url', `${upstream.url}/flags.json`, '--log-format', 'json', '--upstream-timeout', '1'])
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    const entries = linesOf(server.output()).map((line) => JSON.parse(line) as Record<string, unknown>)
    for (const entry of entries) {
      expect(Object.keys(entry)).toEqual(['time', 'level', 'msg'])
      expect(new Date(entry.time as string).toISOString()).toBe(entry.time)
      expect(entry.msg).not.toMatch(/^\[holdfast-server\]/)
    }
    expect(entries).toContainEqual(expect.objectContaining({ level: 'warn', msg: expect.stringContaining('answered 503') }))
    expect(entries).toContainEqual(expect.objectContaining({ level: 'info', msg: expect.stringMatching(/^serving .* at http:/) }))
    expect(entries.at(-1)).toMatchObject({ level: 'info', msg: 'stopped' })
  }, 30_000)

  it('HOLDFAST_LOG_FORMAT=json and HOLDFAST_LOG_LEVEL=warn: the warning only, as JSON', async () => {
    const upstream = await startUpstream({ status: 503, text: 'down' })
    // Started, then killed by the helper after 4 s.
    const { code, output } = await serverExit(['--flags-url', `${upstream.url}/flags.json`, '--port', '0', '--upstream-timeout', '1'], { HOLDFAST_LOG_FORMAT: 'json', HOLDFAST_LOG_LEVEL: 'warn' }, 4000)
    expect(code).toBeNull()
    const entries = linesOf(output).map((line) => JSON.parse(line) as { level: string; msg: string })
    expect(entries.length).toBeGreaterThan(0)
    // Info lines left out, but for the one saying where it serves (see below).
    expect(entries.filter((entry) => entry.level === 'info').map((entry) => entry.msg)).toEqual([expect.stringMatching(/^serving .* at http:/)])
    expect(entries.some((entry) => entry.msg.includes('answered 503'))).toBe(true)
  }, 30_000)

  it('--log-level warn or error still says where it serves (--port 0: nowhere else to learn the port), and nothing else at info', async () => {
    const upstream = await startUpstream({ status: 503, text: 'down' })
    for (const [args, env] of [[['--log-level', 'warn'], {}], [['--log-level', 'error'], {}], [[], { HOLDFAST_LOG_LEVEL: 'warn', HOLDFAST_LOG_FORMAT: 'json' }]] as const) {
      // relay() waits for the serving line and reads the URL from it.
      const server = await relay(['--flags-url', `${upstream.url}/flags.json`, '--upstream-timeout', '1', ...args], env)
      expect((await fetch(`${server.url}/holdfast/v1/status`)).status).toBe(200)
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
      const lines = linesOf(server.output())
      const serving = lines.filter((line) => /serving .* at http:/.test(line))
      expect(serving).toHaveLength(1)
      if (env.HOLDFAST_LOG_FORMAT === 'json') expect(JSON.parse(serving[0]!)).toMatchObject({ level: 'info', msg: `serving ${upstream.url}/flags.json at ${server.url}` })
      // The other info lines ("draining", "stopped") stay left out.
      expect(lines.filter((line) => /draining|stopped/.test(line))).toEqual([])
    }
  }, 60_000)

  it('text (the default, or given) writes today\'s lines, prefix and all', async () => {
    for (const args of [[], ['--log-format', 'text', '--log-level', 'info']]) {
      const server = await relay(['--flags', 'examples/flags.json', ...args])
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
      expect(server.output()).toMatch(/^\[holdfast-server\] events: no --events-file[^\n]*\n\[holdfast-server\] serving examples\/flags\.json at http:\/\/127\.0\.0\.1:\d+\n\[holdfast-server\] SIGTERM: draining \(finishing requests in flight, refusing new ones\)\n\[holdfast-server\] stopped\n$/)
    }
  }, 30_000)

  it('a value it does not know exits 2 naming the option or variable and the choices', async () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
      [['--log-format', 'yaml'], {}, '--log-format must be text or json, got "yaml"'],
      [['--log-level', 'debug'], {}, '--log-level must be error, warn or info, got "debug"'],
      [[], { HOLDFAST_LOG_FORMAT: 'JSON' }, 'HOLDFAST_LOG_FORMAT must be text or json, got "JSON"'],
      [[], { HOLDFAST_LOG_LEVEL: 'verbose' }, 'HOLDFAST_LOG_LEVEL must be error, warn or info, got "verbose"'],
    ]
    for (const [args, env, said] of cases) {
      const { code, output } = await serverExit(['--flags', 'examples/flags.json', '--port', '0', ...args], env)
      expect(code).toBe(2)
      expect(output).toContain(`[holdfast-server] ${said}`)
    }
  }, 60_000)
})

// Every line the command writes once the format is known follows it: a usage error found after the
// log options were read, and the `snapshot` and `events` subcommands (which follow
// HOLDFAST_LOG_FORMAT). Help asked for stays text.
describe('--log-format json beyond the running server', () => {
  const jsonLines = (output: string) => linesOf(output).map((line) => JSON.parse(line) as { time: string; level: string; msg: string })

  it('a usage error found once the log options are read: one JSON line, exit 2', async () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
      [['--log-format', 'json', '--port', 'abc'], {}, '--port'],
      [['--log-format', 'json', '--forward-header', 'x-a'], {}, '--forward-header goes with --upstream'],
      [['--redis-lease-ttl', '5'], { HOLDFAST_LOG_FORMAT: 'json' }, '--redis-lease-ttl needs --redis URL'],
    ]
    for (const [args, env, said] of cases) {
      const { code, output } = await serverExit(['--flags', 'examples/flags.json', ...args], env)
      expect(code).toBe(2)
      const entries = jsonLines(output)
      expect(entries).toEqual([{ time: expect.any(String), level: 'error', msg: expect.stringContaining(said) }])
    }
  }, 60_000)

  it('a usage error found before the log options are read (an unknown option, one given twice), HOLDFAST_LOG_FORMAT=json: one JSON line, exit 2; without it, text and the usage', async () => {
    const cases: Array<[string[], string]> = [
      [['--bogus'], "Unknown option '--bogus'"],
      [['--port', '1', '--port', '2'], '--port is given 2 times'],
    ]
    for (const [args, said] of cases) {
      const json = await serverExit(['--flags', 'examples/flags.json', ...args], { HOLDFAST_LOG_FORMAT: 'json' })
      expect(json.code).toBe(2)
      expect(jsonLines(json.output)).toEqual([{ time: expect.any(String), level: 'error', msg: expect.stringContaining(said) }])
      const text = await serverExit(['--flags', 'examples/flags.json', ...args], { HOLDFAST_LOG_FORMAT: '' })
      expect(text.code).toBe(2)
      expect(text.output).toMatch(new RegExp(`^\\[holdfast-server\\] [^\\n]*${said.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\n]*\\n\\nUsage: holdfast-server`))
    }
  }, 60_000)

  it('snapshot and events with HOLDFAST_LOG_FORMAT=json: their results and errors as JSON lines; --help stays text', async () => {
    const dir = await tempDir()
    const env = { HOLDFAST_LOG_FORMAT: 'json' }
    const written = await serverExit(['snapshot', '--flags', 'examples/flags.json', '--out', join(dir, 'snapshot.json')], env)
    expect(written.code).toBe(0)
    expect(jsonLines(written.output)).toEqual([{ time: expect.any(String), level: 'info', msg: expect.stringMatching(/^wrote .*snapshot\.json: 6 flags/) }])
    const usage = await serverExit(['snapshot', '--flags', 'examples/flags.json'], env)
    expect(usage.code).toBe(2)
    expect(jsonLines(usage.output)).toEqual([{ time: expect.any(String), level: 'error', msg: expect.stringContaining('--out') }])
    const missing = await serverExit(['events', 'replay-dead-letters', '--events-spool', join(dir, 'nope'), '--events-upstream', 'http://127.0.0.1:9/events'], env)
    expect(missing.code).toBe(3)
    expect(jsonLines(missing.output)).toEqual([{ time: expect.any(String), level: 'error', msg: expect.stringContaining('does not exist') }])
    const unknown = await serverExit(['events', 'replay'], env)
    expect(unknown.code).toBe(2)
    expect(jsonLines(unknown.output)).toEqual([{ time: expect.any(String), level: 'error', msg: expect.stringContaining('events replay-dead-letters') }])
    for (const args of [['snapshot', '--help'], ['events', '--help'], ['--help']]) {
      const help = await serverExit(args, env)
      expect(help.code).toBe(0)
      expect(help.output).toMatch(/^Usage:/)
    }
  }, 60_000)
})
