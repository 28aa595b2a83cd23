// memcached 1.6.18's `-o` suboptions: the ones ferrocache has an engine setting for set it
// (as the `lru tune`, `lru mode`, `lru temp_ttl`, `slabs automove` and `lru_crawler`
// commands do; `hashpower` and `no_hashexpand` size the cache when it is built); the others are accepted with one log line saying why they do nothing.
// Names memcached does not know are an error (exit code 1, as memcached's "Illegal suboption").
import type { TlsSettings } from '../server/tls'
import { atof, atoi, safeStrtod, safeStrtol, safeStrtoul } from './c-numbers'
import { memcachedError, UsageError } from './errors'

/** Engine settings `-o` can give; absent = the engine's default (memcached's). */
export interface EngineTuning {
  hotLruPct?: number
  warmLruPct?: number
  hotMaxFactor?: number
  warmMaxFactor?: number
  /** `temporary_ttl`: turns the TEMP LRU on with this TTL. */
  temporaryTtl?: number
  /** `no_lru_maintainer` / `no_modern`: one LRU per class instead of HOT/WARM/COLD. */
  lruSegmented?: boolean
  slabAutomove?: 0 | 1 | 2
  slabAutomoveRatio?: number
  lruCrawler?: boolean
  lruCrawlerSleep?: number
  lruCrawlerTocrawl?: number
  /** `track_sizes`: `stats sizes` counts from the start (`stats sizes_enable`). */
  trackSizes?: boolean
  /**
   * memcached's extstore settings given as `-o ext_*` (`extstore <name> <value>` pairs):
   * nothing to apply them to, but `stats settings` shows them as memcached does.
   */
  extstore?: [string, string][]
}

/** What the `-o` list decided. */
export interface ExtendedResult {
  /** `idle_timeout`, seconds. */
  idleTimeout?: number
  /**
   * `stats settings` lines as memcached shows them where ferrocache runs without the value
   * (`ext_wbuf_size`, `ext_max_sleep`, an `idle_timeout` below 0 or past Node's timers).
   */
  shown?: [string, string][]
  tuning: EngineTuning
  /** `hashpower=N`: the hash table's first size (`cacheOptions.hashPower`). */
  hashPower?: number
  /** `no_hashexpand`: false (`cacheOptions.hashExpand`). */
  hashExpand?: boolean
  /** `no_slab_reassign`, `no_modern`: false; `slab_reassign`: true (`cacheOptions.slabReassign`). */
  slabReassign?: boolean
  /** `slab_automove_window=N` (`cacheOptions.slabAutomoveWindow`). */
  slabAutomoveWindow?: number
  /**
   * `slab_sizes` (or `worker_logbuf_size`, which memcached 1.6.18 also reads as one: its
   * case falls through), memcached's text: checked by [[checkSlabSizes]] once `-n` and
   * `-I` are known; ferrocache's classes still follow `-f` and `-n`.
   */
  slabSizes?: string
  /**
   * memcached's `slab_chunk_size_max` as the list set it, and the name that did:
   * `slab_chunk_max=N` (read by `safe_strtol` into an int), `no_chunked_items` (the whole
   * 1 MiB page), or `no_modern` without an earlier `slab_chunk_max` (the page too); the
   * last one wins. Checked against `-I` by `applyChunkOptions` (cli/options.ts).
   */
  chunkMax?: { bytes: number; from: 'slab_chunk_max' | 'no_chunked_items' | 'no_modern' }
  /** `slab_chunk_max` was given (memcached's slab_chunk_size_changed). */
  slabChunkMaxGiven?: boolean
  /**
   * memcached's start_lru_maintainer: false after `no_lru_maintainer` or `no_modern`, true
   * after `lru_maintainer` (its default); `temporary_ttl` needs it.
   */
  lruMaintainer?: boolean
  /** `ssl_chain_cert`, `ssl_key`, `ssl_ca_cert`. */
  tlsFiles: Partial<Record<'tls-cert' | 'tls-key' | 'tls-ca', string>>
  /** `ssl_verify_mode`, `ssl_min_version`, `ssl_ciphers`, `ssl_session_cache`. */
  tlsSettings: TlsSettings
  /** One line per suboption accepted without effect: what ferrocache does instead. */
  notes: string[]
}

const SSL_FILES: Readonly<Record<string, 'tls-cert' | 'tls-key' | 'tls-ca'>> = {
  ssl_chain_cert: 'tls-cert',
  ssl_key: 'tls-key',
  ssl_ca_cert: 'tls-ca',
}

/** Suboptions ferrocache accepts without effect, and why. */
const IGNORED: Readonly<Record<string, string>> = {
  modern: 'memcached 1.6.18 enables nothing with it either',
  hash_algorithm: 'ferrocache hashes keys with ahash (stats settings: hash_algorithm ahash)',
  tail_repair_time: 'ferrocache never force-frees a referenced LRU tail item',
  watcher_logbuf_size: 'each watcher has a fixed 256 KiB buffer',
  worker_logbuf_size: 'ferrocache has no per-worker log buffers (one event loop)',
  read_buf_mem_limit: 'partial requests are bounded by max(-m, 64 MiB) in total',
  maxconns_fast: 'connections past -c always get "ERROR Too many open connections" and are closed',
  no_maxconns_fast: 'connections past -c always get "ERROR Too many open connections" and are closed',
  sock_cookie_id: 'ferrocache sets no SO_MARK on its sockets',
  drop_privileges: 'memcached restricts its system calls; ferrocache does not (-u still switches user)',
  no_drop_privileges: 'memcached restricts its system calls; ferrocache does not',
  slab_automove_freeratio: 'ferrocache has no external storage (extstore)',
  ssl_keyformat: 'keys are read as PEM',
  ssl_wbuf_size: "node's TLS sockets buffer their own output",
  ssl_kernel_tls: 'no kernel TLS offload',
  ssl_min_version: 'TLS 1.2 is the least ferrocache accepts (OpenSSL 3 refuses 1.0 and 1.1 at its default security level)',
  inline_ascii_resp: 'memcached 1.6 accepts it and does nothing with it either',
  resp_obj_mem_limit: 'memcached 1.6.18 no longer uses it either ("DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit")',
  no_inline_ascii_resp: 'memcached 1.6 accepts it and does nothing with it either',
}

/**
 * Suboptions without a ferrocache setting whose value memcached still reads as a number
 * (`safe_strtoul`, or `safe_strtod` for the ratios): anything else is its "could not parse
 * argument to <name>", exit 1, so a line memcached refuses does not start ferrocached either.
 */
const UNSIGNED_VALUE = new Set([
  'watcher_logbuf_size', 'worker_logbuf_size', 'read_buf_mem_limit', 'ssl_wbuf_size', 'ext_page_size',
  'ext_wbuf_size', 'ext_threads', 'ext_io_depth', 'ext_item_size', 'ext_item_age', 'ext_low_ttl',
  'ext_recache_rate', 'ext_compact_under', 'ext_drop_under', 'ext_max_sleep',
])
const DOUBLE_VALUE = new Set(['slab_automove_freeratio', 'ext_max_frag'])
/** memcached's `ssl_verify_mode`: 0 none, 1 request, 2 require, 3 once. */
const SSL_VERIFY_MODES = /^[0-3]$/

/** memcached's extstore options: accepted, ferrocache keeps every item in memory. */
const EXTSTORE = new Set([
  'ext_path', 'ext_page_size', 'ext_wbuf_size', 'ext_threads', 'ext_io_depth', 'ext_item_size', 'ext_item_age',
  'ext_low_ttl', 'ext_recache_rate', 'ext_compact_under', 'ext_drop_under', 'ext_max_frag', 'ext_max_sleep',
  'ext_drop_unread',
])

/**
 * The `-o ext_*` suboptions memcached's `extstore` command can also set, by that
 * command's names (`stats settings` shows them; ext_wbuf_size and ext_max_sleep it cannot
 * set: they go to `stats settings` through `shown`).
 */
const EXTSTORE_SHOWN: Readonly<Record<string, string>> = {
  ext_item_size: 'item_size',
  ext_item_age: 'item_age',
  ext_low_ttl: 'low_ttl',
  ext_recache_rate: 'recache_rate',
  ext_compact_under: 'compact_under',
  ext_drop_under: 'drop_under',
  ext_max_frag: 'max_frag',
  ext_drop_unread: 'drop_unread',
}

/** memcached's names that take `=value` (a missing value is its "Missing ... argument"). */
const WITH_VALUE = new Set([
  'hashpower', 'slab_automove_ratio', 'slab_automove_window', 'tail_repair_time',
  'hash_algorithm', 'lru_crawler_sleep', 'lru_crawler_tocrawl', 'read_buf_mem_limit', 'hot_lru_pct',
  'warm_lru_pct', 'hot_max_factor', 'warm_max_factor', 'temporary_ttl', 'idle_timeout', 'slab_chunk_max',
  'watcher_logbuf_size', 'worker_logbuf_size', 'sock_cookie_id', 'slab_automove_freeratio',
  'ssl_chain_cert', 'ssl_key', 'ssl_ca_cert', 'ssl_keyformat', 'ssl_verify_mode', 'ssl_ciphers',
  'ssl_wbuf_size', 'ssl_min_version', 'slab_sizes', ...[...EXTSTORE].filter((e) => e !== 'ext_drop_unread'),
])

/** `n` (what memcached read from `value`) within min..max, else memcached's `message` (exit 1). */
function inRange(key: string, value: string, n: number, min: number, max: number, message: string): number {
  if (n < min || n > max) throw memcachedError(`-o ${key}: ${message}, got "${value}"`)
  return n
}

/** memcached's factor checks (`<= 0` refused: NaN passes, as in C). */
function factor(key: string, value: string, ok: (n: number) => boolean, message: string): number {
  const n = atof(value)
  if (!ok(n) && !Number.isNaN(n)) throw memcachedError(`-o ${key}: ${message}, got "${value}"`)
  return n
}

/** Node's timers stop at 2^31 - 1 ms: the longest idle timeout, in seconds. */
const IDLE_TIMEOUT_MAX = Math.floor((2 ** 31 - 1) / 1000)

/** Applies one `key[=value]` item; false if memcached does not know the name. */
function applyOne(r: ExtendedResult, key: string, value: string, hasValue: boolean): boolean {
  const t = r.tuning
  switch (key) {
    // memcached reads these with atoi/atof: a leading number, garbage as 0 (c-numbers.ts)
    case 'idle_timeout': {
      // 0 or less never times out (memcached compares it unsigned), shown as read
      const n = atoi(value)
      r.idleTimeout = Math.min(Math.max(n, 0), IDLE_TIMEOUT_MAX)
      if (n !== r.idleTimeout) (r.shown ??= []).push([key, String(n)])
      return true
    }
    case 'hot_lru_pct':
      // memcached's message says > 1, its check refuses only < 1 (1 starts)
      t.hotLruPct = inRange(key, value, atoi(value), 1, 79, 'hot_lru_pct must be > 1 and < 80')
      return true
    case 'warm_lru_pct':
      t.warmLruPct = inRange(key, value, atoi(value), 1, 79, 'warm_lru_pct must be > 1 and < 80')
      return true
    case 'hot_max_factor':
      t.hotMaxFactor = factor(key, value, (n) => n > 0, 'hot_max_factor must be > 0')
      return true
    case 'warm_max_factor':
      t.warmMaxFactor = factor(key, value, (n) => n > 0, 'warm_max_factor must be > 0')
      return true
    case 'temporary_ttl': {
      const n = atoi(value)
      // memcached keeps atoi's int in an unsigned field (-1: 4294967295, every item TEMP);
      // `lru temp_ttl` takes 0 to 2^31 - 1
      if (n < 0) throw new UsageError(`-o temporary_ttl: "${value}" reads as ${n}, memcached's TTL of ${n + 2 ** 32} s; ferrocache's TEMP LRU takes 0 to 2147483647`)
      t.temporaryTtl = n
      return true
    }
    case 'lru_maintainer':
      // memcached's also sets lru_segmented: it undoes an earlier no_lru_maintainer/no_modern
      t.lruSegmented = true
      r.lruMaintainer = true
      return true
    case 'no_lru_maintainer':
      t.lruSegmented = false
      r.lruMaintainer = false
      r.notes.push('-o no_lru_maintainer: one LRU per slab class (lru mode flat); ferrocache\'s background LRU upkeep still runs (stats settings: lru_maintainer_thread yes)')
      return true
    case 'no_modern':
      // memcached 1.4 defaults, as far as ferrocache has them
      Object.assign(t, { lruSegmented: false, slabAutomove: 0, lruCrawler: false })
      r.slabReassign = false
      r.lruMaintainer = false
      // memcached's largest chunk becomes a 1 MiB page, unless slab_chunk_max was given
      if (r.slabChunkMaxGiven !== true) r.chunkMax = { bytes: 2 ** 20, from: 'no_modern' }
      r.notes.push('-o no_modern: flat LRU, slab_automove 0, no LRU crawler, no page moves; hash algorithm and maxconns_fast stay ferrocache\'s')
      return true
    case 'slab_reassign':
      r.slabReassign = true
      return true
    case 'no_slab_automove':
      t.slabAutomove = 0
      return true
    case 'slab_sizes':
      r.slabSizes = value
      return true
    case 'no_chunked_items':
      r.chunkMax = { bytes: 2 ** 20, from: 'no_chunked_items' }
      return true
    case 'no_slab_reassign':
      // memcached then runs no page rebalancer: slabs reassign refused, automove idle
      r.slabReassign = false
      return true
    case 'slab_automove':
      // memcached: without a value it is 1
      if (value === '' && !hasValue) {
        t.slabAutomove = 1
        return true
      }
      t.slabAutomove = inRange(key, value, atoi(value), 0, 2, 'slab_automove must be between 0 and 2') as 0 | 1 | 2
      return true
    case 'slab_automove_ratio':
      t.slabAutomoveRatio = factor(key, value, (n) => n > 0 && n < 1, 'slab_automove_ratio must be > 0 and < 1')
      return true
    case 'lru_crawler':
      t.lruCrawler = true
      return true
    case 'no_lru_crawler':
      t.lruCrawler = false
      return true
    case 'lru_crawler_sleep':
      t.lruCrawlerSleep = inRange(key, value, atoi(value), 0, 1_000_000, 'LRU crawler sleep must be between 0 and 1 second (microseconds)')
      return true
    case 'lru_crawler_tocrawl': {
      const n = safeStrtoul(value)
      if (n === undefined) throw memcachedError(`-o ${key}: lru_crawler_tocrawl takes a numeric 32bit value, got "${value}"`)
      t.lruCrawlerTocrawl = n
      return true
    }
    case 'hash_algorithm':
      if (!['jenkins', 'murmur3', 'xxh3'].includes(value)) throw memcachedError(`-o hash_algorithm: Unknown hash_algorithm option (jenkins, murmur3, xxh3), got "${value}"`)
      break
    case 'hashpower': {
      // memcached's words and exit code 1; atoi: garbage reads as 0 ("of 0 is too low")
      const n = atoi(value)
      if (n < 12) throw memcachedError(`-o hashpower: Initial hashtable multiplier of ${n} is too low, got "${value}"`)
      if (n > 32) throw memcachedError(`-o hashpower: Initial hashtable multiplier of ${n} is too high, got "${value}"`)
      r.hashPower = n
      return true
    }
    case 'no_hashexpand':
      r.hashExpand = false
      // a slot holds one item (open addressing): the table cannot stay put past full
      r.notes.push('-o no_hashexpand: the hash table keeps its size until 15/16 full, then grows all the same (one item per slot; memcached chains items in its buckets)')
      return true
    case 'slab_chunk_max': {
      // memcached prints this and goes on with 0, which it then divides by (SIGFPE)
      const n = safeStrtol(value)
      if (n === undefined) throw memcachedError(`-o ${key}: could not parse argument to slab_chunk_max, got "${value}"`)
      // it replaces an earlier no_chunked_items/no_modern's page; a later no_modern keeps it
      r.chunkMax = { bytes: n, from: 'slab_chunk_max' }
      r.slabChunkMaxGiven = true
      return true
    }
    case 'tail_repair_time':
      inRange(key, value, atoi(value), 10, 2 ** 31 - 1, 'Cannot set tail_repair_time to less than 10 seconds')
      break
    case 'slab_automove_window':
      // (memcached 1.6.18 crashes at start below 0)
      r.slabAutomoveWindow = inRange(key, value, atoi(value), 3, 2 ** 31 - 1, 'slab_automove_window must be > 2')
      return true
    case 'ssl_verify_mode':
      if (!/^\d+$/.test(value)) throw memcachedError(`-o ${key}: could not parse argument to ${key}, got "${value}"`)
      if (!SSL_VERIFY_MODES.test(value)) throw memcachedError(`-o ${key}: Invalid ssl_verify_mode. Use help to see valid options., got "${value}"`)
      r.tlsSettings.verifyMode = Number(value) as 0 | 1 | 2 | 3
      return true
    case 'ssl_min_version':
      // memcached: 0 tlsv1.0, 1 tlsv1.1, 2 tlsv1.2, 3 tlsv1.3 (numbers only)
      if (!/^\d+$/.test(value)) throw memcachedError(`-o ${key}: could not parse argument to ${key}, got "${value}"`)
      if (!SSL_VERIFY_MODES.test(value)) throw memcachedError(`-o ${key}: Invalid ssl_min_version. Use help to see valid options., got "${value}"`)
      if (value === '3') {
        r.tlsSettings.minVersion = 'TLSv1.3'
        return true
      }
      r.tlsSettings.minVersion = 'TLSv1.2'
      if (value === '2') return true
      break
    case 'ssl_ciphers':
      if (value === '') throw memcachedError(`-o ${key} needs a cipher list`)
      r.tlsSettings.ciphers = value
      return true
    case 'track_sizes':
      t.trackSizes = true
      ;(r.shown ??= []).push([key, 'yes'])
      return true
    case 'ssl_session_cache':
      // memcached shows it set with or without -Z; with -Z `stats` counts new sessions
      r.tlsSettings.sessionCache = true
      ;(r.shown ??= []).push([key, 'yes'])
      return true
  }
  const unsigned = UNSIGNED_VALUE.has(key) ? safeStrtoul(value) : undefined
  if ((UNSIGNED_VALUE.has(key) && unsigned === undefined) || (DOUBLE_VALUE.has(key) && safeStrtod(value) === undefined)) {
    throw memcachedError(`-o ${key}: could not parse argument to ${key}, got "${value}"`)
  }
  // memcached 1.6.18's worker_logbuf_size case has no break: the value is also its slab_sizes
  if (key === 'worker_logbuf_size') r.slabSizes = value
  const file = SSL_FILES[key]
  if (file !== undefined) {
    if (value === '') throw memcachedError(`-o ${key} needs a file`)
    r.tlsFiles[file] ??= value
    return true
  }
  const shown = EXTSTORE_SHOWN[key]
  if (shown !== undefined) {
    // memcached's `extstore` command sets the same fields at run time
    ;(r.tuning.extstore ??= []).push([shown, key === 'ext_drop_unread' ? '1' : String(unsigned ?? value)])
  }
  // memcached shows these two as read (the write buffer given in MiB, in a 32-bit field)
  if (key === 'ext_wbuf_size') (r.shown ??= []).push([key, String((unsigned! * 2 ** 20) % 2 ** 32)])
  if (key === 'ext_max_sleep') (r.shown ??= []).push([key, String(unsigned)])
  const why = IGNORED[key] ?? (EXTSTORE.has(key) ? 'ferrocache has no external storage (extstore): every item stays in memory' : undefined)
  if (why === undefined) return false
  r.notes.push(`-o ${key}: accepted and ignored; ${why}`)
  return true
}

/** memcached's `CHUNK_ALIGN_BYTES`. */
const CHUNK_ALIGN = 8
/** memcached's `MAX_NUMBER_OF_SLAB_CLASSES` less the largest class it adds itself. */
const MOST_SLAB_SIZES = 62

/**
 * memcached 1.6.18's `_parse_slab_sizes`: sizes split at `-` (empty parts skipped), each
 * `safe_strtoul` (0 when unreadable) from `minChunk` (`-n`) to `maxChunk` (`slab_chunk_max`)
 * and more than 8 bytes above the one before; an empty text is refused without a message.
 * Its refusals exit 64 with its messages.
 */
export function checkSlabSizes(text: string, minChunk: number, maxChunk: number): number[] {
  if (text === '') throw memcachedError('-o slab_sizes: no sizes given', 64)
  let last = 0
  let count = 0
  const sizes: number[] = []
  for (const part of text.split('-').filter((p) => p !== '')) {
    const size = safeStrtoul(part) ?? 0
    if (size < minChunk || size > maxChunk) throw memcachedError(`-o slab_sizes: slab size ${size} is out of valid range`, 64)
    if (last >= size) throw memcachedError(`-o slab_sizes: slab size ${size} cannot be lower than or equal to a previous class size`, 64)
    if (size <= last + CHUNK_ALIGN) {
      throw memcachedError(`-o slab_sizes: slab size ${size} must be at least ${CHUNK_ALIGN} bytes larger than previous class`, 64)
    }
    last = size
    sizes.push(size)
    if (++count > MOST_SLAB_SIZES) throw memcachedError('-o slab_sizes: too many slab classes specified', 64)
  }
  return sizes
}

/** Parses `-o` lists (each comma-separated), memcached's names and checks. */
export function parseExtended(lists: readonly string[]): ExtendedResult {
  const r: ExtendedResult = { tuning: {}, tlsFiles: {}, tlsSettings: {}, notes: [] }
  for (const list of lists) {
    const items = list.split(',')
    for (const [i, item] of items.entries()) {
      // memcached's getsubopt loop: an empty item before the end is `Illegal suboption ""`
      if (item === '' && i === items.length - 1) continue
      if (item === '') throw memcachedError('-o: Illegal suboption "" (an empty item between commas)')
      const eq = item.indexOf('=')
      const key = eq < 0 ? item : item.slice(0, eq)
      const value = eq < 0 ? '' : item.slice(eq + 1)
      if (WITH_VALUE.has(key) && eq < 0) throw memcachedError(`-o ${key} needs a value (${key}=...)`)
      if (!applyOne(r, key, value, eq >= 0)) {
        throw memcachedError(`unknown -o option "${key}" (memcached 1.6.18's names: see ferrocached --help and docs/architecture.md)`)
      }
    }
  }
  const { hotLruPct = 20, warmLruPct = 40 } = r.tuning
  if (hotLruPct + warmLruPct > 80) {
    throw memcachedError('-o hot_lru_pct + warm_lru_pct cannot be more than 80% combined', 64)
  }
  // memcached's TEMP LRU is the maintainer thread's work: it refuses one without it
  if (r.tuning.temporaryTtl !== undefined && r.lruMaintainer === false) {
    throw memcachedError('-o temporary_ttl requires lru_maintainer to be enabled', 64)
  }
  return r
}

/**
 * The admin commands that give the engine these settings (the same code paths as a
 * client's `lru tune`, `lru mode`, `lru temp_ttl`, `slabs automove`, `lru_crawler`).
 */
export function tuningCommands(t: EngineTuning): string[] {
  const lines: string[] = []
  if (t.hotLruPct !== undefined || t.warmLruPct !== undefined || t.hotMaxFactor !== undefined || t.warmMaxFactor !== undefined) {
    lines.push(`lru tune ${t.hotLruPct ?? 20} ${t.warmLruPct ?? 40} ${t.hotMaxFactor ?? 0.2} ${t.warmMaxFactor ?? 2}`)
  }
  if (t.lruSegmented !== undefined) lines.push(`lru mode ${t.lruSegmented ? 'segmented' : 'flat'}`)
  if (t.temporaryTtl !== undefined) lines.push(`lru temp_ttl ${t.temporaryTtl}`)
  if (t.slabAutomove !== undefined) lines.push(`slabs automove ${t.slabAutomove}`)
  if (t.slabAutomoveRatio !== undefined) lines.push(`slabs automove ratio ${t.slabAutomoveRatio}`)
  if (t.lruCrawlerSleep !== undefined) lines.push(`lru_crawler sleep ${t.lruCrawlerSleep}`)
  if (t.lruCrawlerTocrawl !== undefined) lines.push(`lru_crawler tocrawl ${t.lruCrawlerTocrawl}`)
  // the crawler runs from the start (memcached's default too): `-o lru_crawler` asks for
  // nothing more, and `lru_crawler enable` on a running one is memcached's "ERROR failed to
  // start lru crawler thread", which used to stop ferrocached at start
  if (t.lruCrawler === false) lines.push('lru_crawler disable')
  for (const [name, value] of t.extstore ?? []) lines.push(`extstore ${name} ${value}`)
  if (t.trackSizes === true) lines.push('stats sizes_enable')
  return lines
}
