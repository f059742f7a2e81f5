// Prometheus metrics of one server (its own registry, so several servers can live in one process, as in
// tests). Hot counters are plain numbers bumped by the connections and read only when scraped.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { opName } from '../../protocol/generated/ops';
import type { Pool } from './pool';
import { OP_SLOTS } from './session';

export class ServerCounters {
  bytesIn = 0;
  bytesOut = 0;
  /** Connections refused for being over --max-connections or the per-address limit. */
  refused = 0;
  readonly ops = new Float64Array(OP_SLOTS);
}

export function createMetricsRegistry(pool: Pool, counters: ServerCounters): Registry {
  const registry = new Registry();
  new Gauge({
    name: 'rgpu_sessions',
    help: 'Sessions holding a device',
    registers: [registry],
    collect() {
      this.set(pool.sessionCount);
    },
  });
  new Gauge({
    name: 'rgpu_queue_length',
    help: 'Sessions waiting for a device',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      for (const t of pool.inventory().types) this.set({ type: t.type }, t.queued);
    },
  });
  new Counter({
    name: 'rgpu_received_bytes_total',
    help: 'Bytes received from clients',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.bytesIn);
    },
  });
  new Counter({
    name: 'rgpu_sent_bytes_total',
    help: 'Bytes sent to clients',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.bytesOut);
    },
  });
  new Counter({
    name: 'rgpu_refused_connections_total',
    help: 'Connections refused for being over the connection limits',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counters.refused);
    },
  });
  new Counter({
    name: 'rgpu_ops_total',
    help: 'Frames received, by op',
    labelNames: ['op'],
    registers: [registry],
    collect() {
      this.reset();
      for (let i = 0; i < OP_SLOTS; i++) if (counters.ops[i]) this.inc({ op: opName(i) }, counters.ops[i]);
    },
  });
  new Gauge({
    name: 'rgpu_device_memory_used_bytes',
    help: 'Device memory allocated on each device',
    labelNames: ['device', 'type'],
    registers: [registry],
    collect() {
      for (const d of pool.devices) this.set({ device: String(d.index), type: d.type }, d.device.memUsed());
    },
  });
  return registry;
}

/** Serves GET /metrics; resolves once listening. */
export function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500).end(`${e.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
