// The reader of the command's stdout goes away (a log shipper restarted, `holdfast-server | head`
// done): Node says so as an EPIPE 'error' on process.stdout. The relay goes on serving and drains
// at SIGTERM as ever (exit 0); stderr says once that stdout's lines are dropped. Run as the built
// command; the test's end of the stdout pipe is closed under it.
import { spawn } from 'node:child_process'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))
const kills: Array<() => void> = []
afterEach(() => kills.splice(0).forEach((kill) => kill()))

describe("the reader of holdfast-server's stdout goes away", () => {
  for (const format of ['text', 'json'] as const) {
    it(`--log-format ${format}: it keeps serving, a SIGTERM drains to exit 0, and stderr says stdout's lines are dropped`, async () => {
      const env: NodeJS.ProcessEnv = { ...process.env }
      for (const name of Object.keys(env)) if (name.startsWith('HOLDFAST_')) delete env[name]
      const child = spawn(process.execPath, [join(root, 'packages/server/dist/bin.js'), '--flags', 'examples/flags.json', '--port', '0', '--log-format', format], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
      kills.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
      let out = ''
      let err = ''
      child.stderr!.on('data', (chunk) => (err += chunk))
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not started: ${out}`)), 15_000)
        child.stdout!.on('data', (chunk) => {
          out += chunk
          const match = out.match(/serving .* at (http:\/\/[^\s"]+)/)
          if (match) (clearTimeout(timer), resolve(match[1]!))
        })
      })
      child.stdout!.destroy()
      // Lines to stdout from here on: each request's answer is no line, a SIGTERM's 'draining' is one.
      expect((await fetch(`${url}/healthz`)).status).toBe(200)
      child.kill('SIGTERM')
      expect(await exited).toEqual({ code: 0, signal: null })
      const lines = err.split('\n').filter((line) => line !== '')
      expect(lines.filter((line) => /crashed|EPIPE/.test(line))).toEqual([])
      const said = lines.filter((line) => /stdout is closed/.test(line))
      expect(said).toHaveLength(1)
      if (format === 'json') expect(JSON.parse(said[0]!)).toMatchObject({ level: 'warn' })
    }, 30_000)
  }
})

// The same for the `snapshot` and `events` subcommands, a CI step (`holdfast-server snapshot … |
// head -c1`, a log collector gone): the step's exit code is its own (0: the file was written), and
// the loss of stdout is no crash and no line on stderr (the relay's notice names a metric and a
// "from here on" a one-shot step has not).
describe("the reader of a subcommand's stdout goes away", () => {
  for (const format of ['text', 'json'] as const) {
    it(`HOLDFAST_LOG_FORMAT=${format}: snapshot and events replay-dead-letters exit as they would (0), no crash, nothing on stderr`, async () => {
      const dir = await tempDir()
      await mkdir(join(dir, 'spool', 'dead-letter'), { recursive: true })
      const runs: Array<[string[], string]> = [
        [['snapshot', '--flags', 'examples/flags.json', '--out', join(dir, 'snapshot.json')], 'snapshot'],
        // An empty spool: "no dead letters" on stdout, then the lock released.
        [['events', 'replay-dead-letters', '--events-spool', join(dir, 'spool'), '--events-upstream', 'http://127.0.0.1:9/events'], 'events'],
      ]
      for (const [args, which] of runs) {
        const env: NodeJS.ProcessEnv = { ...process.env, HOLDFAST_LOG_FORMAT: format }
        const child = spawn(process.execPath, [join(root, 'packages/server/dist/bin.js'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
        kills.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
        // Gone before the command writes its line.
        child.stdout!.destroy()
        let err = ''
        child.stderr!.on('data', (chunk) => (err += chunk))
        const exited = await new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
        await new Promise((r) => setTimeout(r, 50))
        expect({ which, ...exited, err }).toEqual({ which, code: 0, signal: null, err: '' })
      }
      expect(JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'))).toMatchObject({ holdfastSnapshot: 1, kind: 'definitions' })
    }, 30_000)
  }
})
