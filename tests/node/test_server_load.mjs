// test_server_load.mjs: a bounded load test of `lmc serve` on loopback:
// N concurrent streaming clients, each sending requests back to back for
// S seconds. Passes with zero failed requests and stable memory (RSS
// sampled every 0.5 s: the last sample within 64 MB of the first after
// warm-up); prints throughput, p50/p99 latency and time to first token.
// CI runs a short variant (8 clients, 5 s); the long one is
//   LMC_LOAD_CLIENTS=32 LMC_LOAD_SECONDS=30 LMC=build/lmc node tests/node/test_server_load.mjs
// LMC_LOAD_MODEL=FILE serves an existing model instead of training one.
import fs from 'node:fs';
import * as L from './lib_server.mjs';

const clients = Number(process.env.LMC_LOAD_CLIENTS || 8);
const seconds = Number(process.env.LMC_LOAD_SECONDS || 5);
const slots = Number(process.env.LMC_LOAD_SLOTS || 16);
const maxTokens = Number(process.env.LMC_LOAD_TOKENS || 32);

async function main() {
  const dir = L.tmpdir();
  let srv;
  try {
    const model = process.env.LMC_LOAD_MODEL || (await L.trainTiny(dir, 20)).model;
    srv = await L.startServer(model, ['--slots', String(slots), '--queue', String(4 * clients), '--ctx', '128']);
    await L.loadTest(srv, { clients: Math.min(clients, 4), seconds: 1, maxTokens }); // warm-up
    const r = await L.loadTest(srv, { clients, seconds, maxTokens });
    const m = await L.metrics(srv.port);
    const mb = (x) => (x / 1048576).toFixed(1);
    const batch = m.lmc_engine_step_rows_total / m.lmc_engine_steps_total;
    console.log(`load: ${clients} clients x ${seconds} s, ${slots} slots: ${r.ok} requests, ${r.failed} failed, ` +
                `${r.tokens} tokens, ${r.tokPerSec.toFixed(1)} tok/s, mean batch ${batch.toFixed(2)}`);
    console.log(`latency p50 ${r.p50} ms, p99 ${r.p99} ms; first token p50 ${r.ttft50} ms, p99 ${r.ttft99} ms`);
    console.log(`RSS first ${mb(r.rss[0])} MB, last ${mb(r.rss[r.rss.length - 1])} MB, ` +
                `max ${mb(Math.max(...r.rss))} MB over ${r.rss.length} samples`);
    let bad = 0;
    if (r.failed) { console.log(`FAIL ${r.failed} failed requests:\n${r.errors.join('\n')}`); bad++; }
    if (r.ok < clients) { console.log(`FAIL only ${r.ok} requests completed`); bad++; }
    if (r.rss[r.rss.length - 1] > r.rss[0] + 64 * 1048576) { console.log('FAIL RSS grew by more than 64 MB'); bad++; }
    srv.proc.kill('SIGTERM');
    const { code, log } = await srv.exited;
    if (code !== 0) { console.log(`FAIL exit code ${code}:\n${log}`); bad++; }
    srv = null;
    if (bad) process.exit(1);
    console.log('ok');
  } finally {
    if (srv) srv.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
