// --log-format and --log-level (and HOLDFAST_LOG_FORMAT, HOLDFAST_LOG_LEVEL), as an operator runs
// holdfast-server: what its log reader then gets.
import { describe, expect, it } from 'vitest'
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
    // Started, then killed by the helper after 4 s: its info lines (the URL among them) left out.
    const { code, output } = await serverExit(['--flags-url', `${upstream.url}/flags.json`, '--port', '0', '--upstream-timeout', '1'], { HOLDFAST_LOG_FORMAT: 'json', HOLDFAST_LOG_LEVEL: 'warn' }, 4000)
    expect(code).toBeNull()
    const entries = linesOf(output).map((line) => JSON.parse(line) as { level: string; msg: string })
    expect(entries.length).toBeGreaterThan(0)
    expect(entries.every((entry) => entry.level === 'warn' || entry.level === 'error')).toBe(true)
    expect(entries.some((entry) => entry.msg.includes('answered 503'))).toBe(true)
  }, 30_000)

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
