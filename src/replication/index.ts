export { Replication } from './replication'
export {
  DEFAULT_BACKLOG_SIZE,
  parseTarget,
  resolveReplicationOptions,
  type ReplicationOptions,
  type ReplicaTarget,
  type ResolvedReplicationOptions,
} from './options'
