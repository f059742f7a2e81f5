/**
 * @jupyterlab/services logs connection chatter ("Starting WebSocket: …", "Kernel: restarting") with
 * console.log/debug/warn; under Node that lands on stdout and would mix with cell output. Drops exactly
 * those lines and returns a function that restores the console.
 */
const CHATTER = /^(Starting WebSocket|Kernel: |Connection lost|Scheduling reconnect|Restarting kernel|Kernel .* connection status)/;

export function quietJupyterClientLogs(): () => void {
  const saved = { log: console.log, debug: console.debug, warn: console.warn, info: console.info };
  for (const k of Object.keys(saved) as (keyof typeof saved)[]) {
    const orig = saved[k];
    console[k] = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && CHATTER.test(args[0])) return;
      orig.apply(console, args);
    };
  }
  return () => Object.assign(console, saved);
}
