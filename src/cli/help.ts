// The --help screen: memcached's flags as ferrocached takes them, one screen (< 24 lines).
export const HELP = `Usage: ferrocached [options]   memcached-compatible server with a Rust core

  -p, --port <num>            TCP port (default: 11211); -l, --listen <addr>: interface (127.0.0.1)
  -m, --memory-limit <mb>     item memory in megabytes (default: 64)
  -c, --conn-limit <num>      max simultaneous connections (default: 1024)
  -I, --max-item-size <size>  largest item, e.g. 512k, 2m (default: 1m, max: 16m)
  -f, --factor <num>          slab growth factor (1.25); -n, --slab-min-size <bytes>: min chunk (48)
  -M, --disable-evictions     return an error when memory is full instead of evicting
  -v, --verbose               log connections (-vv: also every read and reply)
  -A, --enable-shutdown       enable the text "shutdown" command; -U, --udp-port: only 0 (no UDP)
  -Y, --auth-file <file>      logins (user:pass lines, -S too); TLS: --tls-cert --tls-key [--tls-ca]
  --metrics-port <num>        Prometheus /metrics, status page at / (HTTP); --metrics-host <addr>
  -o, --extended <k=v,...>    idle_timeout=<seconds> closes idle connections (0 = never)
  --data-dir <dir>            snapshots: load the newest at start, write one on stop and by rules
  --save "<s> <n> ..."        rules: after s seconds if n changes (default "900 1 300 100 60 10000")
  --keep-snapshots <n>        snapshots kept (default: 2); --strict-load, --load-async (see README)
  --appendfsync <policy>      append-only log: always | everysec | no (fsync policy; default off)
  --replica-of <host:port>    replica (--replica-writable, --repl-backlog, --replica-auth|-tls*)
  -h, --help / -V, --version  print this help / the version, and exit

Environment: FERROCACHE_<LONG_OPTION> for each long option (FERROCACHE_PORT,
FERROCACHE_MEMORY_LIMIT, FERROCACHE_DISABLE_EVICTIONS=1, FERROCACHE_DATA_DIR, ...). Flags win.
JSON logs on stderr. SIGTERM/SIGINT/SIGUSR1: graceful stop (snapshot first); twice: at once.
`
