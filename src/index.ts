export { native, platformTriple } from './native'
