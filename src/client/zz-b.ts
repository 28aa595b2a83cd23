import { Client } from '.'
function randomString(n: number): string { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = 48 + Math.floor(Math.random() * 42); return b.toString('latin1') }
const N = 50000
const keys = Array.from({ length: N }, () => randomString(20))
const vals = Array.from({ length: N }, () => randomString(100 + Math.floor(Math.random() * 4700)))
async function run(port: number, window: number, poolSize: number, buf: boolean) {
  const c = new Client({ servers: [`127.0.0.1:${port}`], poolSize })
  const vs = buf ? vals.map(v => Buffer.from(v)) : vals
  let next = 0
  const u0 = process.cpuUsage(); const t0 = Date.now()
  await Promise.all(Array.from({ length: window }, async () => { while (next < N) { const i = next++; await c.set(keys[i]!, vs[i]!) } }))
  const ms = Date.now() - t0; const u = process.cpuUsage(u0)
  console.log(`window ${window} pool ${poolSize} buf ${buf}: ${Math.round(N / ms * 1000)} set/s, client cpu ${((u.user + u.system) / N).toFixed(2)} us/op (sys ${(u.system / N).toFixed(2)})`)
  await c.close()
}
(async () => { for (const [w, p, b] of [[256, 1, false], [1024, 1, false], [256, 2, false], [256, 1, true], [4096, 1, false]] as const) await run(23021, w, p, b) })()
