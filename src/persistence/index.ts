// Snapshots that survive restarts: the scheduler, its rules and what it reports.
export { Persistence, type PersistenceOptions, type AppendFsync } from './persistence'
export { DEFAULT_SAVE, parseSaveRules, formatSaveRules, type SaveRule } from './rules'
export {
  SnapshotError,
  isLogWriteError,
  type LogWriteError,
  type LogWriteFailure,
  type SnapshotErrorCode,
  type SaveReport,
  type LoadReport,
  type RejectedSnapshot,
} from './errors'
