// The official openai npm client against `lmscore serve`.
//
//   node openai_client.mjs prepare BASE_URL DATA.jsonl > requests.jsonl
//       tokenizes each (context, " " + choice) pair of the task data through
//       the server's /tokenize (lm-eval-harness's pair encoding: the
//       continuation's tokens are whole[len(context):]) and writes them as
//       `lmscore score` requests in token form.
//   node openai_client.mjs check BASE_URL MODEL requests.jsonl results.jsonl
//       sends the same token sequences through the SDK's
//       completions.create (echo, max_tokens 0, logprobs) and checks every
//       continuation token's log-probability, and their sum, against
//       `lmscore score --token-logprobs`; then the lm-eval request shape
//       (max_tokens 1), string prompts, models.list and the SDK's errors.
//
// Exits 1 on any difference.
import fs from "node:fs";
import OpenAI from "openai";

const [mode, baseURL, ...rest] = process.argv.slice(2);
const readJSONL = (path) =>
  fs.readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

async function tokenize(text) {
  const r = await fetch(`${baseURL}/tokenize`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: text, add_special_tokens: true }),
  });
  if (!r.ok) throw new Error(`/tokenize: ${r.status} ${await r.text()}`);
  return (await r.json()).tokens;
}

let failures = 0;
function check(ok, what) {
  if (!ok) {
    failures++;
    if (failures <= 10) console.error(`FAIL: ${what}`);
  }
}

async function prepare(dataPath) {
  for (const doc of readJSONL(dataPath)) {
    const ctx = await tokenize(doc.context);
    for (const [k, choice] of doc.choices.entries()) {
      const whole = await tokenize(doc.context + " " + choice);
      console.log(JSON.stringify({
        id: `${doc.id}/${k}`,
        context_tokens: ctx,
        continuation_tokens: whole.slice(ctx.length),
        group: doc.id,
        label: doc.label,
        choice: k,
      }));
    }
  }
}

async function checkAll(model, requestsPath, resultsPath) {
  const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "unused", maxRetries: 0 });
  const reqs = readJSONL(requestsPath);
  const results = new Map(readJSONL(resultsPath).map((r) => [r.id, r]));

  // models.list: the served model is there.
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  check(models.includes(model), `models.list() = ${JSON.stringify(models)} lacks ${model}`);

  // Token prompts, several per request, echo + max_tokens 0.
  let compared = 0;
  for (let i = 0; i < reqs.length; i += 8) {
    const batch = reqs.slice(i, i + 8);
    const resp = await client.completions.create({
      model,
      prompt: batch.map((r) => [...r.context_tokens, ...r.continuation_tokens]),
      echo: true,
      max_tokens: 0,
      logprobs: 1,
      temperature: 0,
    });
    check(resp.choices.length === batch.length, `${resp.choices.length} choices for ${batch.length} prompts`);
    for (const c of resp.choices) {
      const req = batch[c.index];
      const want = results.get(req.id);
      const lp = c.logprobs;
      const n = req.context_tokens.length + req.continuation_tokens.length;
      check(lp.tokens.length === n && lp.token_logprobs.length === n && lp.top_logprobs.length === n && lp.text_offset.length === n,
        `${req.id}: lists of ${lp.tokens.length}/${lp.token_logprobs.length}/${lp.top_logprobs.length}/${lp.text_offset.length} for ${n} tokens`);
      check(lp.token_logprobs[0] === null && lp.top_logprobs[0] === null, `${req.id}: the first token's entries are not null`);
      const cont = lp.token_logprobs.slice(req.context_tokens.length);
      check(cont.length === want.token_logprobs.length, `${req.id}: ${cont.length} continuation log-probabilities, lmscore score has ${want.token_logprobs.length}`);
      let sum = 0;
      for (const [k, v] of cont.entries()) {
        // The server writes the float32's exact value, lmscore score its
        // shortest float32 form: both round to the same float32.
        check(Math.fround(v) === Math.fround(want.token_logprobs[k]), `${req.id} token ${k}: ${v} != ${want.token_logprobs[k]}`);
        sum += v;
      }
      check(sum === want.logprob, `${req.id}: sum ${sum} != lmscore score's ${want.logprob}`);
      compared++;
    }
  }

  // lm-eval-harness's shape: max_tokens 1; the echoed part is unchanged and
  // one greedy token follows; is_greedy from top_logprobs as lm-eval does.
  const r0 = reqs[0];
  const p0 = [...r0.context_tokens, ...r0.continuation_tokens];
  const resp = await client.completions.create({ model, prompt: [p0], echo: true, max_tokens: 1, logprobs: 1, temperature: 0, seed: 1234 });
  const lp = resp.choices[0].logprobs;
  check(lp.token_logprobs.length === p0.length + 1, `max_tokens 1: ${lp.token_logprobs.length} entries for ${p0.length}+1 tokens`);
  const slice = lp.token_logprobs.slice(r0.context_tokens.length, -1);
  const tops = lp.top_logprobs.slice(r0.context_tokens.length, -1);
  const greedy = slice.every((v, k) => v === Math.max(...Object.values(tops[k])));
  check(greedy === results.get(r0.id).is_greedy, `is_greedy ${greedy} != lmscore score's ${results.get(r0.id).is_greedy}`);
  const last = lp.token_logprobs.at(-1);
  check(last === Math.max(...Object.values(lp.top_logprobs.at(-1))), "the generated token is not the most likely one");

  // A string prompt is tokenized like /tokenize (BOS first).
  const text = "Once upon a time, there was a little girl named Lily.";
  const ids = await tokenize(text);
  const s = await client.completions.create({ model, prompt: text, echo: true, max_tokens: 0, logprobs: 0 });
  const t = await client.completions.create({ model, prompt: ids, echo: true, max_tokens: 0, logprobs: 0 });
  check(JSON.stringify(s.choices[0].logprobs) === JSON.stringify(t.choices[0].logprobs), "a string prompt and its token ids disagree");

  // Errors reach the SDK as its typed errors, with the server's message.
  const expectError = async (params, status, what) => {
    try {
      await client.completions.create(params);
      check(false, `${what}: no error`);
    } catch (e) {
      check(e instanceof OpenAI.APIError && e.status === status && typeof e.message === "string" && e.message.length > 0,
        `${what}: got ${e}`);
    }
  };
  await expectError({ model, prompt: "x", max_tokens: 16 }, 400, "generation");
  await expectError({ model: "no-such-model", prompt: "x", max_tokens: 0 }, 404, "unknown model");
  await expectError({ model, prompt: [[1, 999999]], max_tokens: 0 }, 400, "invalid token id");

  const sdk = JSON.parse(fs.readFileSync(new URL("./node_modules/openai/package.json", import.meta.url), "utf8")).version;
  if (failures) {
    console.error(`openai ${sdk} SDK: ${failures} checks failed`);
    process.exit(1);
  }
  console.log(`openai ${sdk} SDK: ${compared} prompts, every continuation log-probability equal to lmscore score's; ` +
    "lm-eval shape, string prompts, models.list and errors checked");
}

if (mode === "prepare") await prepare(rest[0]);
else if (mode === "check") await checkAll(...rest);
else {
  console.error("usage: openai_client.mjs prepare|check BASE_URL ...");
  process.exit(2);
}
