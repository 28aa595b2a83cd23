/**
 * ferrocache: a memcached-compatible in-memory cache for Node.js with its core in Rust.
 * Use it embedded ({@link Cache}), serve it to memcached clients ({@link createServer},
 * the `ferrocached` command), or talk to memcached-protocol servers ({@link Client}).
 * Keyv and cache-manager: see `ferrocache/keyv`.
 *
 * @packageDocumentation
 * @module ferrocache
 */
export { Cache, type CacheOptions } from './cache'
export { native, platformTriple } from './native'
export { parseSize } from './size'
export type {
  CacheLike,
  CacheStats,
  CallOptions,
  CasEntry,
  Decoded,
  Encodable,
  Encoding,
  FetchLoader,
  FetchOptions,
  RawValue,
  ReadOptions,
  SlabClassStats,
  WriteOptions,
} from './types'
export {
  createServer,
  FerrocacheServer,
  type ListenerAddresses,
  type ServerOptions,
  type ListenAddress,
  type UnixSocketOptions,
  type CommandSwitches,
  type TlsOptions,
  type TlsFiles,
  type TlsSettings,
  type TlsVerifyMode,
  readTlsFiles,
  type StatsFamily,
  type StatusReport,
  type SlabClassStatus,
  type Logger,
  type LogFn,
} from './server'
export { Client, type ClientOptions, type ServerSpec, type TlsOption, type CacheError, type ClientErrorCode } from './client'
export type { ReplicationOptions, ReplicaTarget, ReplicaTlsOptions } from './replication'
export {
  Persistence,
  SnapshotError,
  isLogWriteError,
  parseSaveRules,
  type AppendFsync,
  type LoadReport,
  type LogWriteError,
  type LogWriteFailure,
  type RejectedSnapshot,
  type SaveReport,
  type SaveRule,
  type SnapshotErrorCode,
} from './persistence'

// `import ferrocache from 'ferrocache'` compiled to CommonJS with esModuleInterop reads
// `exports.default`, and TypeScript types that default as the whole module (our .d.ts has
// no default export): give it the module, as index.mjs does. Not enumerable, so
// `Object.keys(require('ferrocache'))` lists the API only.
Object.defineProperty(exports, 'default', { value: exports })
