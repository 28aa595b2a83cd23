// Errors of bad arguments: a TypeError or RangeError naming the argument, with a `code`
// as the engine's own checks give theirs (and as Node's argument errors carry one).

/** `code` of an argument error: a key (`FERROCACHE_BAD_KEY`, from the key checks), a value
 * to store, or any other argument or option. */
export type ArgumentErrorCode = 'FERROCACHE_BAD_KEY' | 'FERROCACHE_BAD_VALUE' | 'FERROCACHE_BAD_ARGUMENT'

/** A `kind` error with `message` and `code`. */
export function argError(
  kind: TypeErrorConstructor | RangeErrorConstructor,
  message: string,
  code: ArgumentErrorCode = 'FERROCACHE_BAD_ARGUMENT',
  options?: ErrorOptions,
): Error & { code: ArgumentErrorCode } {
  return Object.assign(new kind(message, options), { code })
}

/** `parse()`, whose TypeErrors and RangeErrors are argument errors: a constructor's options
 * check (`new Cache`, `new Client`, `createServer`) gives them `FERROCACHE_BAD_ARGUMENT`
 * where they have no code yet, as every method's argument errors have one. */
export function argumentsChecked<T>(parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    if ((err instanceof TypeError || err instanceof RangeError) && !('code' in err)) {
      Object.assign(err, { code: 'FERROCACHE_BAD_ARGUMENT' satisfies ArgumentErrorCode })
    }
    throw err
  }
}
