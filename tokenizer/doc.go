// Package tokenizer turns text into the token ids of a model's own
// vocabulary, read from GGUF metadata (FromGGUF) or from the files the
// vocabularies ship as (LoadSentencePieceModel, LoadLlama2c,
// LoadHFTokenizerJSON, LoadGPT2Files, LoadHFFolder). It is pure Go.
//
// It is also the one reader of those files: package convert writes what
// they hold to GGUF through Vocab.GGUFMetadata, the inverse of
// VocabFromGGUF.
//
// Two tokenizer models, as llama.cpp names them in tokenizer.ggml.model:
//
//   - "llama": SentencePiece BPE with scores (Llama-2, Mistral, TinyLlama,
//     stories260K): spaces become "▁", a dummy space is prefixed, the
//     highest-scoring adjacent pair merges first, and what no token covers
//     falls back to <0xXX> byte tokens (or one <unk> per run without them).
//   - "gpt2": byte-level BPE with merge ranks (GPT-2, Llama-3, Qwen2), after
//     a pre-tokenizer named by tokenizer.ggml.pre: "gpt-2", "llama-bpe",
//     "qwen2", or "default" (also used when the key is absent). Any other
//     name is an error that names it.
//
// # Reference behaviour
//
// Ids are identical to reference encoders the project does not write, on
// the corpus in testdata/ (tools/tokref/ regenerates the fixtures):
// gpt-3-encoder (GPT-2), llama-tokenizer-js and sentencepiece (Llama-2),
// Hugging Face tokenizers (the tokenizer.json of Mistral, Llama 3.1, Qwen3
// and Gemma 3, read from their HF folders and through GGUF), sentencepiece
// (stories260K's 512 pieces) and llama.cpp itself (every vocabulary and
// pre-tokenizer above, through vocabulary-only GGUF files). Where the
// references could disagree, lmscore follows llama.cpp, which reads the
// same GGUF files:
//
//   - "default" is llama.cpp's fallback, not GPT-2's regex: four regexes
//     applied in turn (punctuation runs, GPT-2's, digit runs, digit
//     triples).
//   - Special tokens are matched in text before the model runs:
//     user-defined tokens always, control tokens only by EncodeSpecial with
//     parseSpecial. Encode never turns "<s>" in text into BOS.
//   - \s is Unicode's White_Space (so U+0085 is a space and U+FEFF is not,
//     unlike JavaScript's \s); \p{L} and \p{N} are Go's Unicode 15.0 tables
//     plus the CJK Extension I letters of 15.1, llama.cpp's version.
//   - Invalid UTF-8 is read as U+FFFD per bad byte by byte-level BPE and
//     passed to byte fallback by SentencePiece.
//   - A tokenizer.json's NFC normalizer (Qwen2, Qwen3) is applied between
//     special tokens, as Hugging Face does; llama.cpp applies none. GGUF
//     files carry it in tokenizer.lmscore.normalizer, a key of lmscore's
//     own, so that one without the key tokenizes as llama.cpp does.
//
// Known differences from llama.cpp: a gpt2 vocabulary without BOS/EOS keys
// has none (llama.cpp assumes id 11); the per-model lstrip/rstrip
// attributes llama.cpp sets by model name (Phi-3, Jina) are not applied;
// Decode gives exact bytes without llama.cpp's clean_spaces.
//
// A Tokenizer is safe for concurrent use.
package tokenizer
