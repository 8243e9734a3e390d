package tokenizer

import (
	"strings"
	"unicode"
)

// EncodePair tokenizes a (context, continuation) pair for scoring, the way
// lm-evaluation-harness does (see ../shared/ANCHORS.md):
//
//   - trailing whitespace of the context moves to the start of the
//     continuation, so " Paris" is scored as one word rather than a lone
//     space followed by "Paris";
//   - contIDs = Encode(context+continuation)[len(Encode(context)):], so the
//     continuation's tokens are the ones the whole text really has;
//   - an empty context becomes the prefix token alone: BOS, or EOS for
//     vocabularies without BOS (GPT-2's <|endoftext|>), and the continuation
//     is encoded on its own.
//
// A non-empty context starts with BOS when the vocabulary adds one
// (AddBOS, tokenizer.ggml.add_bos_token: true for Llama-2, Mistral,
// TinyLlama and stories260K, false for GPT-2 and Qwen2), as llama.cpp and
// lm-evaluation-harness with add_bos_token=True do. A context that is all
// whitespace is treated as empty. Whitespace is Python's str.isspace, which
// is what lm-evaluation-harness's rstrip removes.
//
// ctxIDs is empty only when the context is empty and the vocabulary has
// neither BOS nor EOS; contIDs is empty when the continuation adds no token.
func EncodePair(tok *Tokenizer, context, continuation string) (ctxIDs, contIDs []int32) {
	trimmed := strings.TrimRightFunc(context, isPythonSpace)
	continuation = context[len(trimmed):] + continuation
	context = trimmed

	if context == "" {
		if p := tok.prefixToken(); p >= 0 {
			ctxIDs = []int32{p}
		}
		return ctxIDs, tok.Encode(continuation)
	}

	whole := tok.Encode(context + continuation)
	ctx := tok.Encode(context)
	if len(ctx) < len(whole) {
		contIDs = whole[len(ctx):]
	}
	if tok.addBOS {
		ctxIDs = make([]int32, 0, len(ctx)+1)
		ctxIDs = append(ctxIDs, tok.bos)
		ctxIDs = append(ctxIDs, ctx...)
	} else {
		ctxIDs = ctx
	}
	return ctxIDs, contIDs
}

// prefixToken is the token an empty context stands for: BOS, else EOS
// (lm-evaluation-harness's prefix_token_id), -1 if neither exists.
func (tk *Tokenizer) prefixToken() int32 {
	if tk.bos >= 0 {
		return tk.bos
	}
	return tk.eos
}

// isPythonSpace is Python's str.isspace: Go's unicode.IsSpace plus the
// information separators U+001C-U+001F, which Python counts as whitespace.
func isPythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (0x1C <= r && r <= 0x1F)
}
