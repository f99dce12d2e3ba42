// Loaded with `node --import` before the app so instrumentation patches land.
// Placeholder until tracing is wired: with no OTLP endpoint, tracing stays off.
export {}
