// The --help screen: memcached's flags as ferrocached takes them, one screen (< 24 lines).
export const HELP = `Usage: ferrocached [options]   memcached-compatible server (memcached 1.6.18 flags)

  -p, --port <num>            TCP port (11211); -l, --listen <a,b:port,...>: interfaces (127.0.0.1)
  -s, --unix-socket <path>    Unix socket instead of TCP; -a <octal>: its mode (700); -b: backlog
  -m, --memory-limit <mb>     item memory in megabytes (64); -c, --conn-limit: connections (1024)
  -I, --max-item-size <size>  largest item, e.g. 512k, 2m (1m, max 16m); -M: errors, no evictions
  -f, --factor <num>          slab growth factor (1.25); -n, --slab-min-size <bytes>: min chunk (48)
  -d, -u <user>, -P <file>    run detached; switch user after binding (as root); write the pid
  -C, -F, -X, -W, -D <c>      no CAS / flush_all / dumps (cachedump, psync) / watch; prefix stats
  -B ascii|binary|auto        protocols; -R <n>: requests per read before replies are written (20)
  -o, --extended <k=v,...>    idle_timeout, hot_lru_pct, warm_lru_pct, temporary_ttl, slab_automove,
                              no_lru_crawler, lru_crawler_sleep... (others: accepted, logged)
  -v, -vv; -A; -U <port>      log connections / every read; "shutdown" command; UDP port (0: off)
  -Y, --auth-file <file>      logins (user:pass lines, -S too); TLS: --tls-cert --tls-key [--tls-ca]
  --metrics-port <num>        Prometheus /metrics, status page at / (HTTP); --metrics-host <addr>
  --data-dir <dir>            snapshots: load at start, write on stop and by --save "<s> <n> ..."
  --keep-snapshots <n>        snapshots kept (2); --strict-load, --load-async; --appendfsync <p>
  --replica-of <host:port>    replica (--replica-writable|-auth|-tls*); --repl-backlog|-timeout <s>
  --no-replication-commands   replicaof/psync answer ERROR (plain memcached; not with --replica-of)
  -h, -V, -i                  help/version/license; -L: hugepages; -t -k -r: ignored; -e: --data-dir

Environment: FERROCACHE_<LONG_OPTION> per long option (FERROCACHE_PORT, ...); flags win.
JSON logs on stderr. SIGTERM/INT/USR1: graceful stop (snapshot first); twice: at once. HUP: ignored
`
