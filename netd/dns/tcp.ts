// Owns one DNS-over-TCP connection (RFC 1035 §4.2.2, RFC 7766): 2-byte
// length framing, several (pipelined) queries per connection, answers in
// completion order, a bound on queries in flight, and an idle deadline that
// only a complete message resets — so half-open and byte-dribbling clients
// are cut off and never pin the server.
import type net from 'node:net';

export type TcpHandler = (msg: Buffer, clientAddr: string) => Buffer | undefined | Promise<Buffer | undefined>;

export interface TcpConnOptions {
  idleMs: number;
  maxInFlight: number;
  handle: TcpHandler;
  onTimeout: () => void;
}

/** Unread answers we buffer for a client before giving up on it. */
const MAX_UNSENT = 256 * 1024;

export function serveTcpConnection(sock: net.Socket, opts: TcpConnOptions): void {
  const clientAddr = sock.remoteAddress ?? '';
  let buf: Buffer | undefined;
  let inFlight = 0;
  let peerEnded = false;
  sock.setNoDelay(true);
  const timer = setTimeout(() => {
    opts.onTimeout();
    sock.destroy();
  }, opts.idleMs);

  const finishIfDone = () => {
    if (peerEnded && inFlight === 0 && !sock.destroyed) {
      drain();
      if (inFlight === 0) sock.end();
    }
  };
  const send = (reply: Buffer | undefined) => {
    if (!reply || sock.destroyed || !sock.writable) return;
    const framed = Buffer.allocUnsafe(reply.length + 2);
    framed.writeUInt16BE(reply.length, 0);
    reply.copy(framed, 2);
    sock.write(framed);
    timer.refresh();
    if (sock.writableLength > MAX_UNSENT) sock.destroy(); // client is not reading
  };

  const drain = () => {
    while (buf && buf.length >= 2 && inFlight < opts.maxInFlight && !sock.destroyed) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      const msg = buf.subarray(2, 2 + len);
      buf = buf.length === 2 + len ? undefined : buf.subarray(2 + len);
      timer.refresh();
      let r: ReturnType<TcpHandler>;
      try {
        r = opts.handle(msg, clientAddr);
      } catch {
        r = undefined;
      }
      if (r instanceof Promise) {
        inFlight++;
        if (inFlight >= opts.maxInFlight) sock.pause();
        r.then(send, () => undefined).finally(() => {
          inFlight--;
          drain();
          if (inFlight < opts.maxInFlight && !peerEnded) sock.resume();
          finishIfDone();
        });
      } else send(r);
    }
  };

  sock.on('data', (chunk: Buffer) => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    drain();
  });
  sock.on('end', () => {
    // Half-close: answer what is complete (some may wait for a free slot),
    // then close our side; a partial message is dropped.
    peerEnded = true;
    finishIfDone();
  });
  sock.on('error', () => sock.destroy());
  sock.on('close', () => clearTimeout(timer));
}
