// Device printf: C printf semantics over vprintf's packed argument buffer (each argument aligned to its
// size: int/unsigned/char 4 bytes, long/long long/double/pointers 8), formatted on the host.

export type ArgReader = (size: number) => DataView;

const CONV = /%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?(hh|h|ll|l|j|z|t|L)?([diouxXeEfFgGaAcspn%])/g;

export function formatPrintf(fmt: string, arg: ArgReader, str: (addr: number) => string): string {
  return fmt.replace(CONV, (_m, flags: string, width: string | undefined, prec: string | undefined, len: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    const w = width === '*' ? arg(4).getInt32(0, true) : width ? parseInt(width, 10) : 0;
    const p = prec === '*' ? arg(4).getInt32(0, true) : prec !== undefined ? parseInt(prec, 10) : undefined;
    const wide = len === 'l' || len === 'll' || len === 'j' || len === 'z' || len === 't';
    let body: string;
    let sign = '';
    switch (conv) {
      case 'd': case 'i': {
        let v = wide ? arg(8).getBigInt64(0, true) : BigInt(arg(4).getInt32(0, true));
        if (len === 'h') v = BigInt.asIntN(16, v);
        if (len === 'hh') v = BigInt.asIntN(8, v);
        if (v < 0n) { sign = '-'; v = -v; } else if (flags.includes('+')) sign = '+'; else if (flags.includes(' ')) sign = ' ';
        body = intPrec(v.toString(), p);
        break;
      }
      case 'u': case 'x': case 'X': case 'o': {
        let v = wide ? arg(8).getBigUint64(0, true) : BigInt(arg(4).getUint32(0, true));
        if (len === 'h') v = BigInt.asUintN(16, v);
        if (len === 'hh') v = BigInt.asUintN(8, v);
        body = v.toString(conv === 'u' ? 10 : conv === 'o' ? 8 : 16);
        if (conv === 'X') body = body.toUpperCase();
        body = intPrec(body, p);
        if (flags.includes('#') && v !== 0n) body = (conv === 'o' ? '0' : conv === 'x' ? '0x' : conv === 'X' ? '0X' : '') + body;
        break;
      }
      case 'c': body = String.fromCharCode(arg(4).getUint8(0)); break;
      case 's': {
        const a = Number(arg(8).getBigUint64(0, true));
        body = a === 0 ? '(null)' : str(a);
        if (p !== undefined) body = body.slice(0, p);
        break;
      }
      case 'p': body = '0x' + arg(8).getBigUint64(0, true).toString(16); break;
      case 'n': arg(8); return '';
      default: {
        let v = arg(8).getFloat64(0, true);
        if (v < 0 || Object.is(v, -0)) { sign = '-'; v = -v; } else if (flags.includes('+')) sign = '+'; else if (flags.includes(' ')) sign = ' ';
        body = formatFloat(v, conv, p ?? 6, flags.includes('#'));
      }
    }
    let s = sign + body;
    if (s.length < w) {
      if (flags.includes('-')) s = s.padEnd(w);
      else if (flags.includes('0') && !/[csp]/.test(conv) && Number.isFinite(Number(body.replace(/^0x/i, '')) || 0)) s = sign + body.padStart(w - sign.length, '0');
      else s = s.padStart(w);
    }
    return s;
  });
}

function intPrec(digits: string, p: number | undefined): string {
  if (p === undefined) return digits;
  if (p === 0 && digits === '0') return '';
  return digits.padStart(p, '0');
}

function formatFloat(v: number, conv: string, p: number, alt: boolean): string {
  const upper = conv === conv.toUpperCase();
  if (!Number.isFinite(v)) { const s = Number.isNaN(v) ? 'nan' : 'inf'; return upper ? s.toUpperCase() : s; }
  let s: string;
  switch (conv.toLowerCase()) {
    case 'f': s = v.toFixed(Math.min(p, 100)); break;
    case 'e': s = expForm(v, p); break;
    case 'a': s = v.toString(16); break;
    default: { // g
      const P = p === 0 ? 1 : p;
      const x = v === 0 ? 0 : Math.floor(Math.log10(Number(v.toExponential(P - 1))));
      if (x < -4 || x >= P) s = expForm(v, P - 1);
      else s = v.toFixed(Math.max(0, P - 1 - x));
      if (!alt && s.includes('.')) s = s.replace(/(\.\d*?)0+(e|$)/, '$1$2').replace(/\.(e|$)/, '$1');
    }
  }
  return upper ? s.toUpperCase() : s;
}

function expForm(v: number, p: number): string {
  const [m, e] = v.toExponential(Math.min(p, 100)).split('e');
  const n = parseInt(e, 10);
  return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
}
