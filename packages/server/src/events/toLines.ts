import type { ReceivedEvent } from './schema'

/** Serialises events as JSON Lines (one write's worth), each through `wrap`. */
export function toLines(events: ReceivedEvent[], wrap: (event: ReceivedEvent) => unknown): Buffer {
  let lines = ''
  for (const event of events) lines += JSON.stringify(wrap(event)) + '\n'
  return Buffer.from(lines, 'utf8')
}
