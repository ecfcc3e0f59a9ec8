// `holdfast-server events replay-dead-letters` names each dead letter the sink refused again by its
// event id: text a client sent, kept in the dead-letter file. An operator (or a log shipper) reads
// each line as one thing the command said, in text as in JSON (HOLDFAST_LOG_FORMAT), so a line
// break in the id or in the sink's answer must not start a line of its own. Run as the built command.
import { spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { deadLetterPath } from '@holdfast/server'
import { tempDir } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))
const FORGED = '\n[holdfast-server] forged: the data dir was wiped'
const closers: Array<() => void> = []
afterEach(() => closers.splice(0).forEach((close) => close()))

async function replay(format: 'text' | 'json') {
  // A sink that refuses every event, its answer holding a line break of its own.
  const sink = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: `bad event${FORGED}` })))
  })
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
  closers.push(() => sink.close())
  const spool = await tempDir()
  const file = deadLetterPath(spool)
  await mkdir(dirname(file), { recursive: true })
  const event = { id: `evt-1${FORGED}`, type: 'custom', name: 'checkout', time: 1_700_000_000_000 }
  await writeFile(file, `${JSON.stringify({ deadLetteredAt: 1_700_000_000_000, status: 400, event })}\n`)
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of Object.keys(env)) if (name.startsWith('HOLDFAST_')) delete env[name]
  if (format === 'json') env.HOLDFAST_LOG_FORMAT = 'json'
  const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/events`
  const child = spawn(process.execPath, [join(root, 'packages/server/dist/bin.js'), 'events', 'replay-dead-letters', '--events-spool', spool, '--events-upstream', url], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  closers.push(() => child.exitCode === null && child.kill('SIGKILL'))
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, lines: output.split('\n').filter((line) => line !== '') }
}

describe('events replay-dead-letters: a dead letter refused again', () => {
  it('text: its id and the sink answer stay inside the one line naming it', async () => {
    const { code, lines } = await replay('text')
    expect(code).toBe(1)
    expect(lines.filter((line) => line.includes('forged'))).toHaveLength(1)
    expect(lines.every((line) => line.startsWith('[holdfast-server] '))).toBe(true)
    expect(lines.find((line) => line.includes('forged'))).toMatch(/^\[holdfast-server\] kept evt-1\\n\[holdfast-server\] forged/)
  }, 30_000)

  it('HOLDFAST_LOG_FORMAT=json: one JSON line, its msg the id as it was', async () => {
    const { code, lines } = await replay('json')
    expect(code).toBe(1)
    const entries = lines.map((line) => JSON.parse(line) as Record<string, string>)
    expect(entries.find((e) => e.msg.startsWith('kept '))!.msg).toContain(`kept evt-1${FORGED}:`)
  }, 30_000)
})
