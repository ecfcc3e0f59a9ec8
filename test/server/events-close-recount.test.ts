// Closing a relay while its forwarder recounts a large spool (a segment was deleted from outside:
// what is left is read again, window after window, on a slow disk). The recount makes calls that
// return: it is not a hung mount. Before, the close waited for the whole recount, gave up after
// 5 s and logged "did not finish within 5 s (a write that hangs: a hung mount?)", sending an
// operator to look for a dead mount that was not there; a drain on SIGTERM took 5 s for nothing.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { faultyFileSystem, steppedClock } from './events-faults'
import { recordingLogger, startServer, tempDir, waitFor } from './helpers'

const segmentName = (n: number) => `seg-${String(n).padStart(16, '0')}.jsonl`

describe('closing a relay during a long recount of its spool', { timeout: 30_000 }, () => {
  it('ends the recount and closes at once, without blaming a hung write', async () => {
    const spoolDir = join(await tempDir(), 'spool')
    await mkdir(spoolDir, { recursive: true })
    // What a long outage left: many segments (few lines each here, so the test stays small).
    for (let segment = 1; segment <= 80; segment++) {
      const line = JSON.stringify({ at: 1, event: { id: `r-${segment}`, type: 'custom', name: 'n', time: 1 } }) + '\n'
      await writeFile(join(spoolDir, segmentName(segment)), line)
    }
    const disk = faultyFileSystem()
    const clock = steppedClock()
    const logger = recordingLogger()
    // The sink is down: the forwarder backs off on the stepped clock.
    const relay = await startServer({ eventsUpstream: 'http://127.0.0.1:9/e', eventsSpoolDir: spoolDir, eventsFileSystem: disk, eventsForwarding: { clock }, logger })
    await waitFor(() => relay.eventsForwarding!().state === 'failing' && clock.pending().length > 0, 5_000, 5)
    // An operator deletes the oldest segment; the next read recounts the rest on a slow disk
    // (100 ms a read: 8 s in all).
    await rm(join(spoolDir, segmentName(1)))
    let recounting = 0
    disk.beforeRead = () => {
      recounting++
      return new Promise((resolve) => setTimeout(resolve, 100))
    }
    clock.advance(120_000)
    await waitFor(() => recounting >= 3, 5_000, 5)
    const started = Date.now()
    await relay.close()
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(logger.lines.join('\n')).not.toMatch(/hung|did not finish/)
    // It ended there: no read went on after the close.
    const at = recounting
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(recounting).toBeLessThanOrEqual(at + 1)
  })
})
