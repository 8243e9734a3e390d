package lmscore

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

// ErrNoPrefixToken is wrapped by the error for a request with an empty
// context when nothing can stand for it: the vocabulary has neither BOS nor
// EOS, or (for Plan) no model was given.
var ErrNoPrefixToken = errors.New("empty context and the vocabulary has no BOS or EOS token to stand for it")

// requestRules turn a Request into the planner's token pair: tokenization,
// the prefix token of an empty context, the vocabulary check, the context
// window and the block-hash namespace. Model.Score and Plan share them, so a
// plan prepares every request exactly as a run on the same model would.
type requestRules struct {
	name   string               // the model's name, for messages
	arch   string               // with name, the namespace
	tok    *tokenizer.Tokenizer // nil: token-form requests only
	tokErr error                // why tok is nil
	prefix int32                // what an empty context becomes; -1: nothing
	nVocab int                  // token ids must be below it; 0: no model to check against
	window int                  // the context window pairs are left-truncated to; 0: none
}

// modelName is the name a model file goes by: its base name without .gguf.
func modelName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".gguf")
}

// newRequestRules gives the rules of a model with configuration cfg and
// tokenizer tok (nil, with tokErr saying why, when it has none). maxLength
// is Options.MaxLength: 0 or more than the training window means the window.
func newRequestRules(name string, cfg model.Config, tok *tokenizer.Tokenizer, tokErr error, maxLength int) requestRules {
	r := requestRules{name: name, arch: cfg.Arch.String(), tok: tok, tokErr: tokErr, prefix: -1,
		nVocab: cfg.NVocab, window: maxLength}
	if maxLength == 0 || maxLength > cfg.Window() {
		// Positions past the training window have no embedding (gpt2) or
		// untrained rotations; the core rejects them, so truncate to it.
		// (A LongRoPE model's window is its original context: see
		// model.Config.Window.)
		r.window = cfg.Window()
	}
	if tok != nil {
		r.prefix = tok.BOS()
		if r.prefix < 0 {
			r.prefix = tok.EOS() // lm-eval-harness's prefix token for GPT-2-style vocabularies
		}
	}
	return r
}

// namespace is the root of every block hash a plan computes: blocks (and
// anything keyed by block hashes) of different models never match. Without
// a model it is empty.
func (rules *requestRules) namespace() string {
	if rules.name == "" && rules.arch == "" {
		return "" // Plan without a model
	}
	return rules.name + "/" + rules.arch
}

func (rules *requestRules) noTokenizer() error {
	if rules.name == "" {
		return fmt.Errorf("lmscore: text requests need a tokenizer: %w", rules.tokErr)
	}
	return fmt.Errorf("lmscore: %s: text requests need a tokenizer: %w", rules.name, rules.tokErr)
}

// tokenizePair tokenizes a text pair the way lm-eval-harness does (see
// Request).
func (rules *requestRules) tokenizePair(context, continuation string) (ctx, cont []int32, err error) {
	if rules.tok == nil {
		return nil, nil, rules.noTokenizer()
	}
	ctx, cont = tokenizer.EncodePair(rules.tok, context, continuation)
	if len(cont) == 0 {
		return nil, nil, fmt.Errorf("continuation %q adds no token after the context", continuation)
	}
	return ctx, cont, nil
}

// prepared is a request in tokens, checked against the vocabulary.
type prepared struct {
	ctx, cont []int32
	nBytes    int
	normBytes int
}

// normLen is the length acc_norm divides by: lm-eval-harness divides by the
// length of the choice itself, without the delimiter (a space) that joins it
// to the context, so leading whitespace does not count.
func normLen(cont []byte) int {
	return len(bytes.TrimLeft(cont, " \t\n"))
}

// prepare turns r into tokens and checks what the planner would refuse.
func (rules *requestRules) prepare(r *Request) (prepared, error) {
	var p prepared
	switch {
	case r.tokenForm() && r.Context != "" && len(r.ContextTokens) == 0:
		return p, errors.New("context text with continuation tokens: give the context as tokens too")
	case r.tokenForm():
		p.ctx, p.cont = r.ContextTokens, r.ContinuationTokens
		if r.Continuation != "" {
			p.nBytes, p.normBytes = len(r.Continuation), normLen([]byte(r.Continuation)) // tokens given with their text
		} else if rules.tok != nil {
			var text []byte
			for _, id := range p.cont {
				text = append(text, rules.tok.TokenBytes(id)...)
			}
			p.nBytes, p.normBytes = len(text), normLen(text)
		}
	case len(r.ContextTokens) > 0:
		return p, errors.New("context tokens without continuation tokens")
	case r.Continuation == "":
		return p, errors.New("empty continuation")
	default:
		var err error
		if p.ctx, p.cont, err = rules.tokenizePair(r.Context, r.Continuation); err != nil {
			return p, err
		}
		p.nBytes, p.normBytes = len(r.Continuation), normLen([]byte(r.Continuation))
	}
	if len(p.ctx) == 0 {
		if rules.prefix < 0 {
			if rules.nVocab == 0 {
				return p, fmt.Errorf("%w (no model was given)", ErrNoPrefixToken)
			}
			return p, ErrNoPrefixToken
		}
		p.ctx = []int32{rules.prefix}
	}
	if rules.nVocab > 0 {
		for _, part := range [2][]int32{p.ctx, p.cont} {
			for _, id := range part {
				if id < 0 || int(id) >= rules.nVocab {
					return p, fmt.Errorf("token id %d outside the vocabulary of %d", id, rules.nVocab)
				}
			}
		}
	}
	// What the planner would refuse, checked here so that Check (and
	// --skip-invalid) see it too.
	if rules.window > 0 && len(p.cont) > rules.window {
		return p, fmt.Errorf("continuation of %d tokens does not fit the context window of %d", len(p.cont), rules.window)
	}
	return p, nil
}

// readTokenizer reads the tokenizer of a model file; f is nil for a model
// built in memory.
func readTokenizer(f *gguf.File) (*tokenizer.Tokenizer, error) {
	if f == nil {
		return nil, errors.New("the model was built in memory, without a tokenizer")
	}
	return tokenizer.FromGGUF(f)
}

// info describes the model the rules are of (Backend left empty).
func (rules *requestRules) info() ModelInfo {
	info := ModelInfo{Name: rules.name, Arch: rules.arch, NVocab: rules.nVocab, NCtx: rules.window, BOS: rules.prefix}
	if rules.tok != nil {
		info.AddBOS = rules.tok.AddBOS()
	}
	return info
}
