import type { CliValues } from './cliOptions'

/** How `holdfast-server` writes its own log: `--log-format`, `--log-level`. */
export interface LogOptions {
  /** `text`: `[holdfast-server] …` lines; `json`: `{"time","level","msg"}` a line. Default text. */
  format: 'text' | 'json'
  /** The least severe level written. Default info. */
  level: 'error' | 'warn' | 'info'
}

const LOG_CHOICES = { format: ['text', 'json'], level: ['error', 'warn', 'info'] } as const

// --log-format and --log-level, or HOLDFAST_LOG_FORMAT and HOLDFAST_LOG_LEVEL: one of their words.
export function logOptions(v: Pick<CliValues, 'log-format' | 'log-level'>, env: NodeJS.ProcessEnv): { ok: true; options: LogOptions } | { ok: false; error: string } {
  const read = <K extends keyof typeof LOG_CHOICES>(key: K, fallback: (typeof LOG_CHOICES)[K][number]) => {
    const flag: string | undefined = key === 'format' ? v['log-format'] : v['log-level']
    const name = flag !== undefined ? `--log-${key}` : `HOLDFAST_LOG_${key.toUpperCase()}`
    const given = flag ?? env[`HOLDFAST_LOG_${key.toUpperCase()}`]
    if (given === undefined) return { value: fallback }
    if ((LOG_CHOICES[key] as readonly string[]).includes(given)) return { value: given as (typeof LOG_CHOICES)[K][number] }
    return { error: `${name} must be ${LOG_CHOICES[key].join(', ').replace(/, (\w+)$/, ' or $1')}, got ${JSON.stringify(given.length > 80 ? `${given.slice(0, 80)}…` : given)}` }
  }
  const format = read('format', 'text')
  if ('error' in format) return { ok: false, error: format.error! }
  const level = read('level', 'info')
  if ('error' in level) return { ok: false, error: level.error! }
  return { ok: true, options: { format: format.value, level: level.value } }
}
