import type { StoreNotice } from './sharedStore'

/** The notice as it travels on the channel. */
export function serializeNotice(notice: StoreNotice): string {
  return JSON.stringify(notice)
}

/** Reads a notice from the channel; anything else published there (by a human, another tool) is ignored. */
export function parseNotice(text: string): StoreNotice | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!value || typeof value !== 'object') return undefined
  const notice = value as Record<string, unknown>
  if (notice.type === 'released') return { type: 'released' }
  if (notice.type === 'changed' && typeof notice.key === 'string' && typeof notice.version === 'number' && Number.isFinite(notice.version))
    return { type: 'changed', key: notice.key, version: notice.version }
  return undefined
}
