// Run the demo upstream on its own: PORT, JWKS_URL, ISSUER, AUDIENCE.
import { ProxyTracerProvider, trace } from '@opentelemetry/api'
import { buildDemoApi } from './server.ts'

const env = process.env
const gateway = env.GATEWAY_URL ?? 'http://localhost:3000'
const app = buildDemoApi({
  jwksUrl: env.JWKS_URL ?? `${gateway}/api/auth/jwks`,
  issuer: env.ISSUER ?? new URL(gateway).origin,
  audience: env.AUDIENCE ?? new URL(gateway).origin,
  logger: true,
})
await app.listen({ port: Number(env.PORT ?? 4000), host: env.HOST ?? '0.0.0.0' })
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    app
      .close()
      .then(flushTraces)
      .finally(() => process.exit(0))
  })
}

/** Export the spans still buffered when started with the tracing bootstrap. */
async function flushTraces(): Promise<void> {
  const provider = trace.getTracerProvider()
  const sdk = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider
  await (sdk as { shutdown?: () => Promise<void> }).shutdown?.()
}
