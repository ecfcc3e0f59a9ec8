// One line of a spool segment: `{at, event}`, as the spool appends it (toLines) and reads it back.
import type { ReceivedEvent } from './schema'

/**
 * A spool line back as `{at, event}`, or undefined when it is not one. Only the shape is checked:
 * the event was validated by the schema before it was spooled, and the upstream validates again.
 */
export function readSpoolLine(line: Buffer): { at: number; event: ReceivedEvent } | undefined {
  try {
    const parsed = JSON.parse(line.toString('utf8')) as { at?: unknown; event?: { id?: unknown } }
    const ok = typeof parsed.at === 'number' && typeof parsed.event === 'object' && parsed.event !== null && typeof parsed.event.id === 'string'
    return ok ? (parsed as { at: number; event: ReceivedEvent }) : undefined
  } catch {
    return undefined
  }
}
