package lmscore

import (
	"errors"

	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/model"
	"github.com/lmscore/lmscore/tokenizer"
)

// Meta is a model file opened for its metadata alone: the hyperparameters
// and the tokenizer, with no weights on a backend. It is what Plan needs to
// prepare requests as Model.Score would: tokenization, the prefix token of
// an empty context, the vocabulary, the context window, the namespace.
type Meta struct {
	file   *gguf.File
	name   string
	cfg    model.Config
	tok    *tokenizer.Tokenizer
	tokErr error
}

// OpenMeta reads a GGUF model file's metadata. It refuses what Open refuses
// about the file itself (an unsupported architecture or a malformed
// configuration); a file without a tokenizer opens, for token requests.
func OpenMeta(path string) (*Meta, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	cfg, err := model.ConfigFromGGUF(f)
	vocabOnly := errors.Is(err, model.ErrVocabOnly)
	if err != nil && !vocabOnly {
		f.Close()
		return nil, classify(err)
	}
	m := &Meta{file: f, name: modelName(path), cfg: cfg}
	m.tok, m.tokErr = readTokenizer(f)
	if vocabOnly {
		// No weights to size the vocabulary by: the tokenizer's is the
		// vocabulary, and without a tokenizer the file says nothing usable.
		if m.tok == nil {
			f.Close()
			return nil, classify(err)
		}
		m.cfg.NVocab = m.tok.VocabSize()
	}
	return m, nil
}

// rules are the request rules of the model with Options.MaxLength maxLength.
func (m *Meta) rules(maxLength int) requestRules {
	return newRequestRules(m.name, m.cfg, m.tok, m.tokErr, maxLength)
}

// Info describes the model; NCtx is its training window and Backend empty.
func (m *Meta) Info() ModelInfo {
	r := m.rules(0)
	return r.info()
}

// TokenizePair tokenizes a text pair as Model.TokenizePair does.
func (m *Meta) TokenizePair(context, continuation string) (ctx, cont []int32, err error) {
	r := m.rules(0)
	return r.tokenizePair(context, continuation)
}

// Close releases the file.
func (m *Meta) Close() error { return m.file.Close() }
