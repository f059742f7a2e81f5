// Reads a child's output line by line (readiness lines such as "listening on HOST:PORT"). It keeps draining
// the stream after the caller has what it wants, so the child never blocks on a full pipe, and bounds what it
// holds of an endless unterminated line.
const MAX_PARTIAL = 65536;

export function forEachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    buf += s;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
    }
    if (buf.length > MAX_PARTIAL) buf = buf.slice(-4096);
  });
}
