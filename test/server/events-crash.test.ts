// kill -9 of a real server process while batches stream in: what was answered 202 survives.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, tempDir, waitFor } from './helpers'
import { serverProcess } from './events-process'

let counter = 0
const event = (note: string) => ({ id: `crash-${process.pid}-${++counter}`, type: 'custom', name: 'clicked', time: 1_700_000_000_000 + counter, metadata: { note } })

describe('events file under kill -9', () => {
  it('every event answered 202 is in the file after a SIGKILL mid-stream, every line parseable, and still a duplicate after restart', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const args = ['--flags', 'examples/flags.json', '--port', '0', '--events-file', file]
    const first = serverProcess(args)
    const url = await first.url()
    const acked: string[] = []
    let stop = false
    // Small batches, plus batches over 512 KiB (once written in two write() calls).
    const sender = async (size: number, note: string) => {
      while (!stop) {
        const events = Array.from({ length: size }, () => event(note))
        try {
          const response = await post(`${url}/holdfast/v1/events`, { events })
          if (response.status === 202) acked.push(...events.map((e) => e.id))
        } catch {
          return // the process is gone
        }
      }
    }
    const senders = [...[1, 2, 3, 4].map(() => sender(40, 'small')), sender(4000, 'x'.repeat(120)), sender(4000, 'y'.repeat(120))]
    await waitFor(() => acked.length >= 12_000, 60_000, 10)
    await first.kill()
    stop = true
    await Promise.all(senders)

    const text = await readFile(file, 'utf8')
    // A write the kill interrupted may end the file without its newline: it was never answered.
    const complete = text.slice(0, text.lastIndexOf('\n') + 1)
    const stored = new Set(complete.split('\n').filter(Boolean).map((line) => JSON.parse(line).id as string))
    const lost = acked.filter((id) => !stored.has(id))
    expect(lost).toEqual([])

    const second = serverProcess(args)
    const again = await second.url()
    // The start cut any interrupted tail off: every line of the file is a whole event now.
    const repaired = await readFile(file, 'utf8')
    expect(repaired.endsWith('\n')).toBe(true)
    for (const line of repaired.split('\n').filter(Boolean)) expect(JSON.parse(line)).toHaveProperty('id')
    // And everything acknowledged is still known: a retry of it is a duplicate.
    const sample = acked.filter((_, i) => i % 7 === 0).slice(-2000)
    const retry = await post(`${again}/holdfast/v1/events`, { events: sample.map((id) => ({ id, type: 'custom', name: 'clicked', time: 1 })) })
    expect(await retry.json()).toEqual({ accepted: 0, duplicates: sample.length })
    await second.kill()
  }, 120_000)
})
