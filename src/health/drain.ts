// The shutdown drain. Once it starts, /readyz answers 503 and every response
// closes its connection, whoever writes it (a Fastify reply, the upstream
// hop writing straight to the socket, an early hook): keep-alive clients
// reconnect, to another replica, before the listener closes instead of
// sending their next request into a closing server.
import { ServerResponse } from 'node:http'

export class Drain {
  #draining = false

  get draining(): boolean {
    return this.#draining
  }

  start(): void {
    this.#draining = true
  }

  /**
   * The ServerResponse class for `http.createServer`: the one point every
   * response's status line passes through, at the moment it is written (a
   * response in flight when the drain starts closes too). Node then sends
   * `Connection: close` and closes the socket after the response.
   */
  responseClass(): typeof ServerResponse {
    const drain = this
    class DrainingResponse extends ServerResponse {
      // Node's overloads (status, [message], [headers]) pass through as they are.
      override writeHead(...args: unknown[]): this {
        if (drain.draining) this.shouldKeepAlive = false
        return Reflect.apply(super.writeHead, this, args) as this
      }
    }
    // The typings make ServerResponse generic over its request type; Node does not care.
    return DrainingResponse as unknown as typeof ServerResponse
  }
}
