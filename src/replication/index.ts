export { Replication } from './replication'
export {
  DEFAULT_BACKLOG_SIZE,
  parseTarget,
  resolveReplicationOptions,
  type ReplicationOptions,
  type ReplicaTarget,
  type ReplicaTlsOptions,
  type ResolvedReplicationOptions,
} from './options'
