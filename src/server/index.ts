// The network server's public API: run a memcached-compatible server on a Cache.
export { createServer, FerrocacheServer, PROTOCOL_VERSION, TOO_MANY_CONNECTIONS, type ListenerAddresses } from './server'
export type { ServerOptions, ResolvedServerOptions, ListenAddress, UnixSocketOptions, CommandSwitches } from './options'
export { readTlsFiles, type TlsOptions, type TlsFiles, type TlsSettings, type TlsVerifyMode } from './tls'
export { createLogger } from './logger'
export type { Logger, LogFn } from './log'
export { metricsText, statusReport, type StatsFamily, type StatsSource, type StatusReport, type SlabClassStatus } from './metrics'
