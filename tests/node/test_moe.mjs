// test_moe.mjs: a mixture-of-experts model (Mixtral's shape: 4 experts, top
// 2, softmax router, GQA, untied head) in llama.cpp's ecosystem and behind
// lmc serve. Trains it on GPT-2's tokenizer, exports it as GGUF (f32 and
// q8_0: llama.cpp's llama architecture with expert_count and the stacked
// ffn_*_exps tensors) and checks, against node-llama-cpp's prebuilt
// llama.cpp (CPU, no download, no build):
//  - llama.cpp loads the f32 export and its greedy continuation equals
//    `lmc generate --temperature 0` token for token on several prompts, the
//    chosen tokens' log-probabilities within 1e-2 (routing is a discrete
//    choice: a different expert would show as a different token);
//  - on the q8_0 export the first tokens agree and the log-probabilities
//    stay within 0.08 of lmc's int8 path (as test_gguf.mjs's dense models);
//  - @huggingface/gguf reads the metadata and the 3-D expert tensors' shapes;
//  - lmc serve (the openai npm client): 4 concurrent greedy completions,
//    batched, each equal to the full-recompute `lmc sample --temperature 0`.
// Usage: LMC=build/lmc node tests/node/test_moe.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { gguf } from '@huggingface/gguf';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import OpenAI from 'openai';
import * as L from './lib_server.mjs';

const { check, llamaGreedy, lmcGreedy } = L;
const dir = L.tmpdir();
const t0 = Date.now();

const shard = path.join(dir, 'train.bin'), model = path.join(dir, 'moe');
L.writeShard(shard, L.corpus(1500));
const cfg = path.join(dir, 'moe.json');
fs.writeFileSync(cfg, JSON.stringify({
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', hidden_size: 64, intermediate_size: 96,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 50257,
  max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
  num_local_experts: 4, num_experts_per_tok: 2, output_router_logits: true, router_aux_loss_coef: 0.02 }));
await L.run(['train', '--model', cfg, '--batch', '4', '--seq', '64', '--steps', '30', '--lr', '1e-2', '--warmup', '5',
             '--data', shard, '--save', model, '--quiet', '--threads', '1']);
const files = {};
for (const type of ['f32', 'q8_0']) {
  files[type] = path.join(dir, `moe-${type}.gguf`);
  await L.run(['export', '--model', model, '--tokenizer', L.TOK, '--type', type, '--out', files[type]]);
}
console.log(`trained and exported in ${Date.now() - t0} ms`);

const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true,
                               progressLogs: false, logLevel: LlamaLogLevel.error });

const PROMPTS = ['The cat', 'My friend walked to', 'A little bird', 'The old man opened the'];
const f32 = await llama.loadModel({ modelPath: files.f32 });
await check("f32: llama.cpp's greedy continuation = lmc generate --temperature 0", async () => {
  let worst = 0;
  for (const text of PROMPTS) {
    const prompt = Array.from(f32.tokenize(text));
    const want = await llamaGreedy(f32, prompt, 24);
    const got = await lmcGreedy(files.f32, prompt, 24);
    assert.deepEqual(got.map((x) => x.id), want.map((x) => x.id), `prompt '${text}'`);
    worst = Math.max(worst, ...got.map((x, i) => Math.abs(x.logprob - want[i].logprob)));
  }
  console.log(`     ${PROMPTS.length} x 24 tokens agree; largest log-probability difference ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-2, `log-probabilities differ by ${worst}`);
});
await f32.dispose();

const q8 = await llama.loadModel({ modelPath: files.q8_0 });
await check("q8_0: first tokens agree, log-probabilities within 0.08 of lmc's int8 path", async () => {
  let worst = 0, agreed = 0;
  for (const text of PROMPTS.slice(0, 3)) {
    const prompt = Array.from(q8.tokenize(text));
    const want = await llamaGreedy(q8, prompt, 16);
    const got = await lmcGreedy(files.q8_0, prompt, 16);
    assert.deepEqual(got.slice(0, 4).map((x) => x.id), want.slice(0, 4).map((x) => x.id), `prompt '${text}'`);
    for (let i = 0; i < got.length && got[i].id === want[i].id; i++, agreed++)
      worst = Math.max(worst, Math.abs(got[i].logprob - want[i].logprob));
  }
  console.log(`     ${agreed} of 48 tokens agree; largest log-probability difference ${worst.toExponential(2)}`);
  assert.ok(worst < 0.08, `log-probabilities differ by ${worst}`);
});
await q8.dispose();
await llama.dispose();

await check('@huggingface/gguf reads the experts', async () => {
  const r = await gguf(files.q8_0, { allowLocalFile: true, computeParametersCount: true });
  const md = r.metadata;
  assert.equal(md['general.architecture'], 'llama');
  assert.equal(md['llama.expert_count'], 4);
  assert.equal(md['llama.expert_used_count'], 2);
  assert.equal(md['llama.feed_forward_length'], 96);
  const t = Object.fromEntries(r.tensorInfos.map((x) => [x.name, x]));
  assert.deepEqual(t['blk.1.ffn_gate_inp.weight'].shape, [64n, 4n]);
  assert.equal(t['blk.1.ffn_gate_inp.weight'].dtype, 0); // f32, as llama.cpp's converter keeps the router
  assert.deepEqual(t['blk.1.ffn_gate_exps.weight'].shape, [64n, 96n, 4n]);
  assert.deepEqual(t['blk.1.ffn_up_exps.weight'].shape, [64n, 96n, 4n]);
  assert.deepEqual(t['blk.0.ffn_down_exps.weight'].shape, [96n, 64n, 4n]);
  assert.equal(t['blk.0.ffn_down_exps.weight'].dtype, 8); // 96 = 3 q8_0 blocks
  assert.equal(r.tensorInfos.length, 2 + 1 + 10 * 2);
  const layer = 2 * 64 + 64 * 64 * 2 + 2 * 64 * 32 + 64 * 4 + 4 * 3 * 64 * 96;
  assert.equal(r.parameterCount, 2 * 50257 * 64 + 64 + 2 * layer);
});

await check('lmc serve: 4 concurrent greedy completions == lmc sample --temperature 0', async () => {
  const srv = await L.startServer(model, ['--slots', '4']);
  try {
    const client = new OpenAI({ apiKey: 'none', baseURL: `${srv.base}/v1` });
    await L.greedyBatchIsSample(srv, client, model, PROMPTS, 20);
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
  }
});

fs.rmSync(dir, { recursive: true, force: true });
console.log(`${L.failures()} failures (${Date.now() - t0} ms)`);
process.exit(L.failures() ? 1 : 0);
