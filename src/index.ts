export { Cache, type CacheOptions } from './cache'
export { native, platformTriple } from './native'
export { parseSize } from './size'
export type {
  CacheLike,
  CacheStats,
  CasEntry,
  Decoded,
  Encodable,
  Encoding,
  FetchLoader,
  RawValue,
  ReadOptions,
  SlabClassStats,
  WriteOptions,
} from './types'
export { createServer, FerrocacheServer, type ServerOptions, type StatsFamily, type StatusReport, type SlabClassStatus } from './server'
export { Client, type ClientOptions, type ServerSpec, type CacheError, type ClientErrorCode } from './client'
export {
  Persistence,
  SnapshotError,
  parseSaveRules,
  type LoadReport,
  type SaveReport,
  type SaveRule,
  type SnapshotErrorCode,
} from './persistence'
