// `stats settings`: memcached 1.6.18's names in its order (clients and dashboards parse
// them), with ferrocached's real values; features ferrocached does not have (extstore)
// report memcached's "off" values.

/** The settings a server runs with, as `stats settings` shows them. */
export interface ReportedSettings {
  memoryLimit: number
  connLimit: number
  port: number
  /** memcached's -U; 0 = no UDP. */
  udpPort?: number
  host: string
  verbosity: number
  evictions: boolean
  enableShutdown: boolean
  growthFactor: number
  slabMinSize: number
  maxItemSize: number
  /** memcached's largest slab class (default 512 KiB, at most `maxItemSize`). */
  slabChunkMax?: number
  /** Seconds. */
  idleTimeout: number
  /** The user file (-Y), when logins are required. */
  authFile?: string | undefined
  /** With TLS: memcached's verify mode (0-3), the files (CLI), the ssl_* settings. */
  tls?: { verifyMode: number; files?: { cert: string; key: string; ca?: string }; minVersion?: string; ciphers?: string; sessionCache?: boolean } | undefined
  /** `-s`/`-a`: the Unix socket (then `inter` is NULL). */
  unixSocket?: { path: string; mode: number } | undefined
  /** `-b`. */
  backlog?: number
  /** `-C`, `-F`, `-X`, `-R`, `-B` (`-W` has no line in memcached 1.6.18). */
  switches?: { cas: boolean; flush: boolean; dump: boolean; reqsPerEvent: number; protocol: 'auto' | 'ascii' | 'binary' }
  /** `-D`. */
  prefixDelimiter?: string
  /** `-o hashpower` (`cacheOptions.hashPower`); 0 when not given. */
  hashPowerInit?: number
  /** `-o slab_automove_window` (`cacheOptions.slabAutomoveWindow`); 30 when not given. */
  slabAutomoveWindow?: number
}

export function settingsReport(s: ReportedSettings): [string, string][] {
  const onOff = (b: boolean): string => (b ? 'on' : 'off')
  const yesNo = (b: boolean): string => (b ? 'yes' : 'no')
  const w = s.switches ?? { cas: true, flush: true, dump: true, reqsPerEvent: 20, protocol: 'auto' }
  return [
    ['maxbytes', String(s.memoryLimit)],
    ['maxconns', String(s.connLimit)],
    ['tcpport', String(s.port)],
    ['udpport', String(s.udpPort ?? 0)],
    ['inter', s.host],
    ['verbosity', String(s.verbosity)],
    ['oldest', '0'],
    ['evictions', onOff(s.evictions)],
    ['domain_socket', s.unixSocket?.path ?? 'NULL'],
    ['umask', (s.unixSocket?.mode ?? 0o700).toString(8)],
    ['shutdown_command', yesNo(s.enableShutdown)],
    ['growth_factor', s.growthFactor.toFixed(2)],
    ['chunk_size', String(s.slabMinSize)],
    // one event loop, whatever -t asked for
    ['num_threads', '1'],
    ['num_threads_per_udp', '1'],
    ['stat_key_prefix', s.prefixDelimiter ?? ':'],
    // (both follow `stats detail on|off` and -D: crates/ferrocache-protocol/src/detail.rs)
    ['detail_enabled', s.prefixDelimiter === undefined ? 'no' : 'yes'],
    ['reqs_per_event', String(w.reqsPerEvent)],
    ['cas_enabled', yesNo(w.cas)],
    ['tcp_backlog', String(s.backlog ?? 1024)],
    ['binding_protocol', w.protocol === 'auto' ? 'auto-negotiate' : w.protocol],
    // Both protocols log in from the one user file (memcached prints its path here).
    ['auth_enabled_sasl', yesNo(s.authFile !== undefined)],
    ['auth_enabled_ascii', s.authFile ?? 'no'],
    ['item_size_max', String(s.maxItemSize)],
    ['maxconns_fast', 'yes'],
    ['hashpower_init', String(s.hashPowerInit ?? 0)],
    ['slab_reassign', 'yes'],
    ['slab_automove', '1'],
    ['slab_automove_ratio', '0.80'],
    ['slab_automove_window', String(s.slabAutomoveWindow ?? 30)],
    ['slab_chunk_max', String(s.slabChunkMax ?? Math.min(s.maxItemSize, 512 * 1024))],
    ['lru_crawler', 'yes'],
    ['lru_crawler_sleep', '100'],
    ['lru_crawler_tocrawl', '0'],
    ['tail_repair_time', '0'],
    ['flush_enabled', yesNo(w.flush)],
    ['dump_enabled', yesNo(w.dump)],
    ['hash_algorithm', 'ahash'],
    ['lru_maintainer_thread', 'yes'],
    ['lru_segmented', 'yes'],
    ['hot_lru_pct', '20'],
    ['warm_lru_pct', '40'],
    ['hot_max_factor', '0.20'],
    ['warm_max_factor', '2.00'],
    ['temp_lru', 'no'],
    ['temporary_ttl', '61'],
    ['idle_timeout', String(s.idleTimeout)],
    // the `watch` buffer of each watcher (crates/ferrocache-protocol/src/watch.rs); no
    // per-worker log buffers here
    ['watcher_logbuf_size', '262144'],
    ['worker_logbuf_size', '0'],
    ['read_buf_mem_limit', '0'],
    ['track_sizes', 'no'],
    ['inline_ascii_response', 'no'],
    // memcached 1.6.18's extstore defaults (Debian's build has extstore, started without a
    // path); `-o ext_*` and the `extstore` command change them (src/cli/extended.ts)
    ['ext_item_size', '512'],
    ['ext_item_age', '4294967295'],
    ['ext_low_ttl', '0'],
    ['ext_recache_rate', '2000'],
    ['ext_wbuf_size', '4194304'],
    ['ext_compact_under', '0'],
    ['ext_drop_under', '0'],
    ['ext_max_sleep', '1000000'],
    ['ext_max_frag', '0.80'],
    ['slab_automove_freeratio', '0.010'],
    ['ext_drop_unread', 'no'],
    ['ssl_enabled', yesNo(s.tls !== undefined)],
    ['ssl_chain_cert', s.tls?.files?.cert ?? '(null)'],
    ['ssl_key', s.tls?.files?.key ?? '(null)'],
    // memcached prints OpenSSL's flags: 1 request = PEER, 2 require = PEER|FAIL_IF_NO_PEER_CERT
    // (3), 3 once = those|CLIENT_ONCE (7)
    ['ssl_verify_mode', String([0, 1, 3, 7][s.tls?.verifyMode ?? 0] ?? 0)],
    ['ssl_keyformat', '1'],
    ['ssl_ciphers', s.tls?.ciphers ?? 'NULL'],
    ['ssl_ca_cert', s.tls?.files?.ca ?? 'NULL'],
    ['ssl_wbuf_size', '0'],
    ['ssl_session_cache', yesNo(s.tls?.sessionCache === true)],
    ['ssl_kernel_tls', 'no'],
    ['ssl_min_version', s.tls?.minVersion === 'TLSv1.3' ? 'tlsv1.3' : 'tlsv1.2'],
    ['num_napi_ids', '(null)'],
    ['memory_file', '(null)'],
  ]
}
