// A minimal pool for throughput measurement (run as its own process by measureThroughput.ts): accepts
// HELLO, swallows everything, answers CTX_SYNC, and answers MEMCPY_DTOH with bulk from one reused buffer.
import * as net from 'node:net';
import { Flag, Op } from '../../gpu-runtime/protocol/generated/ops';
import { encodeFrame, packValue } from '../../gpu-runtime/protocol/ts/codec';
import { FrameScanner } from '../../kernel-proxy/src/frameScanner';

const DTOH_BULK = Buffer.alloc(64 << 20, 0x5a);

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  sock.on('error', () => {});
  const scanner = new FrameScanner({
    onHeader: (op, _flags, seq) => {
      if (op === Op.HELLO) sock.write(encodeFrame(Op.HELLO, { flags: Flag.REPLY, seq, body: packValue({ session: 's-1', device: { type: 'T4', name: 'sink' } }) })[0]);
      else if (op === Op.CTX_SYNC || op === Op.PING) sock.write(encodeFrame(op, { flags: Flag.REPLY, seq })[0]);
      else if (op === Op.MEMCPY_DTOH) return true;
      return false;
    },
    onBody: (_op, _flags, seq, _r, body) => {
      const size = body.readUInt32LE(8);
      for (const p of encodeFrame(Op.MEMCPY_DTOH, { flags: Flag.REPLY, seq, bulk: DTOH_BULK.subarray(0, size) })) sock.write(p);
    },
  });
  sock.on('data', (c: Buffer) => scanner.scan(c));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}\n`));
