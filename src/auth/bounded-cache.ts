// A small TTL cache with a hard size bound (oldest entries evicted first).
// Used for sessions and verified JWTs; keys are hashes, never raw tokens.

export class BoundedCache<V> {
  readonly #max: number
  readonly #map = new Map<string, { value: V; expiresAt: number }>()

  constructor(max: number) {
    this.#max = max
  }

  get(key: string, now: number): V | undefined {
    const e = this.#map.get(key)
    if (e === undefined) return undefined
    if (e.expiresAt <= now) {
      this.#map.delete(key)
      return undefined
    }
    return e.value
  }

  set(key: string, value: V, expiresAt: number): void {
    this.#map.delete(key)
    this.#map.set(key, { value, expiresAt })
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value
      if (oldest !== undefined) this.#map.delete(oldest)
    }
  }

  delete(key: string): void {
    this.#map.delete(key)
  }

  deleteWhere(pred: (v: V) => boolean): void {
    for (const [k, e] of this.#map) if (pred(e.value)) this.#map.delete(k)
  }

  clear(): void {
    this.#map.clear()
  }

  get size(): number {
    return this.#map.size
  }
}
