import type { IncomingMessage, ServerResponse } from 'node:http';

/** How long a refused connection stays open, unread, for the client to read its answer before it is closed. */
export const LINGER_MS = 2_000;

/**
 * Makes the answer to `req` the last on its connection, without reading the rest of its body:
 * the answer says `Connection: close`, and once it is written nothing more is read and the
 * connection is closed.
 *
 * Closing at once would lose the answer: a socket closed with the client's bytes unread makes
 * the kernel reset the connection, and a client still sending its body may not have read what
 * we wrote. So our side is ended, reading stops (the client's sending stalls once the buffers
 * are full), and LINGER_MS later the socket is destroyed.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
  // Whatever was still reading the body (a form parser, a stream on to another service, a
  // parser draining it after its own refusal) gets no more of it.
  req.unpipe();
  req.removeAllListeners('data');
  req.removeAllListeners('readable');
  req.pause();
  const socket = req.socket as IncomingMessage['socket'] | null;
  if (!socket) return;
  const destroySoon = socket.destroySoon.bind(socket);
  // Node ends the connection of a `Connection: close` answer with destroySoon once it is written.
  socket.destroySoon = () => {
    if (req.readableEnded) {
      destroySoon();
      return;
    }
    socket.end();
    // Node has just set the rest of the body to be read and dropped (on the next tick): stop that.
    setImmediate(() => socket.pause());
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
