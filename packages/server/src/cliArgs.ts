// What every command of holdfast-server (the server, `snapshot`, `events replay-dead-letters`)
// reads its command line with, beside node:util's parseArgs: negative values, repeated options,
// numbers as an operator types them, so one value means the same to all three.

/**
 * `args` with each `--name -5` (an option that takes a value, then a negative number) joined into
 * `--name=-5`. `parseArgs` refuses a value starting with a dash as "argument is ambiguous … use
 * '--name=-XYZ'", which names no range: joined, the value reaches the option's own check, which
 * says what is wanted ("--max-shrink must be from 0 to 100 …, got \"-5\""). No option name starts
 * with a digit or a dot, so nothing meant as an option is taken as a value.
 */
export function negativeValuesJoined(args: readonly string[], options: Record<string, { type: string }>): string[] {
  const joined: string[] = []
  for (let i = 0; i < args.length; i++) {
    const name = /^--([^=]+)$/.exec(args[i])?.[1]
    if (name !== undefined && options[name]?.type === 'string' && i + 1 < args.length && /^-\.?\d/.test(args[i + 1])) {
      joined.push(`${args[i]}=${args[++i]}`)
    } else if (args[i] === '--') {
      joined.push(...args.slice(i))
      break
    } else joined.push(args[i])
  }
  return joined
}

/**
 * Why a `parseArgs` result must be refused because an option that takes one value was given more
 * than once (`parseArgs` keeps the last), or undefined. A repeated switch (`--lenient --lenient`)
 * and a `multiple` option are fine.
 */
export function repeatedOption(tokens: ReadonlyArray<{ kind: string; name?: string }>, options: Record<string, { type: string; multiple?: boolean }>): string | undefined {
  const seen = new Map<string, number>()
  for (const token of tokens) if (token.kind === 'option' && token.name !== undefined) seen.set(token.name, (seen.get(token.name) ?? 0) + 1)
  for (const [name, count] of seen) {
    const option = options[name]
    if (count > 1 && option?.type === 'string' && !option.multiple) return `--${name} is given ${count} times: give it once`
  }
  return undefined
}

/**
 * A number as an operator types one: decimal digits, with a fraction unless `whole` (`5`, `0.5`,
 * `.5`, `5.`); anything else is NaN. `Number()` alone took `0x10` as 16, `1e3` as 1000, ` 5` as 5
 * and `''` as 0. Every numeric option of the server, `snapshot` and `events replay-dead-letters`
 * is read through it, so one value means the same to all three.
 */
export function readCliNumber(text: string, whole: boolean): number {
  return (whole ? /^\d+$/ : /^(\d+(\.\d*)?|\.\d+)$/).test(text) ? Number(text) : Number.NaN
}
