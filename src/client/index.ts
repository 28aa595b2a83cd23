export { Client } from './client'
export type { ClientOptions, ServerSpec } from './options'
export type { CacheError, ClientErrorCode } from './errors'
export { Continuum, ketamaHash, ketamaName, type KetamaNode } from './ketama'
