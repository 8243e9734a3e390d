package tokenizer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer turns text into token ids and back for one vocabulary. It is
// immutable after New (its scratch space and word caches live in a
// sync.Pool, one per concurrent call), so one Tokenizer is safe for
// concurrent use by any number of goroutines.
type Tokenizer struct {
	model  string
	spm    *spmModel
	bpe    *bpeModel
	types  []int32
	pieces [][]byte // what each token stands for in text (TokenBytes)

	// Tokens matched in text before the model runs, longest first:
	// user-defined ones always, control and unknown ones only when special
	// tokens are parsed (llama.cpp's tokenizer_st_partition).
	specials []special

	bos, eos       int32
	addBOS, addEOS bool
	spacePrefix    bool
	nfc            bool // Vocab.Normalizer is NormalizerNFC

	scratch sync.Pool // *work
}

type special struct {
	text   string
	id     int32
	always bool // user-defined: matched even when special tokens are not parsed
}

// work is per-call scratch space, pooled so that Encode allocates little.
type work struct {
	text     runeText
	split    splitter
	bpe      bpeWork
	spm      spmWork
	frags    []fragment
	fragsTmp []fragment
}

// fragment is a run of text, or a special token when id >= 0.
type fragment struct {
	text string
	id   int32
}

// New builds a tokenizer for v. It checks v and reports the first problem:
// an unsupported model or pre-tokenizer name, arrays of mismatched length,
// duplicate tokens, a malformed merge or an out-of-range special id.
func New(v *Vocab) (*Tokenizer, error) {
	if v == nil {
		return nil, fmt.Errorf("tokenizer: nil vocabulary")
	}
	if err := v.check(); err != nil {
		return nil, err
	}
	// llama.cpp renames empty tokens rather than failing; they could never
	// match text, and a name keeps the vocabulary's ids dense.
	tokens := v.Tokens
	copied := false
	seen := make(map[string]int, len(tokens))
	for i, t := range tokens {
		if t == "" {
			if !copied { // the caller's Vocab stays untouched
				tokens, copied = append([]string(nil), tokens...), true
			}
			t = "[EMPTY_" + strconv.Itoa(i) + "]"
			tokens[i] = t
		}
		if j, dup := seen[t]; dup {
			return nil, fmt.Errorf("tokenizer: duplicate token %q at ids %d and %d (tokenizer.ggml.tokens)", t, j, i)
		}
		seen[t] = i
	}
	vv := *v
	vv.Tokens = tokens

	tk := &Tokenizer{
		model:       v.Model,
		bos:         v.BOS,
		eos:         v.EOS,
		addBOS:      v.AddBOS,
		addEOS:      v.AddEOS,
		spacePrefix: v.Model == ModelLlama && !v.NoSpacePrefix,
		nfc:         v.Normalizer == NormalizerNFC,
		types:       make([]int32, len(tokens)),
	}
	for i := range tokens {
		tk.types[i] = vv.tokenType(i)
	}
	markControlLooking(tokens, tk.types)

	var err error
	switch v.Model {
	case ModelLlama:
		tk.spm, err = newSPMModel(&vv)
	case ModelGPT2:
		var pre preKind
		if pre, err = preKindOf(v.Pre); err == nil {
			tk.bpe, err = newBPEModel(&vv, pre)
		}
	}
	if err != nil {
		return nil, err
	}

	tk.pieces = make([][]byte, len(tokens))
	for i, t := range tokens {
		tk.pieces[i] = tk.tokenPiece(t, tk.types[i])
	}
	for i, t := range tokens {
		switch tk.types[i] {
		case TypeControl, TypeUnknown:
			tk.specials = append(tk.specials, special{text: t, id: int32(i)})
		case TypeUserDefined:
			tk.specials = append(tk.specials, special{text: t, id: int32(i), always: true})
		}
	}
	sort.SliceStable(tk.specials, func(a, b int) bool { return len(tk.specials[a].text) > len(tk.specials[b].text) })
	tk.scratch.New = func() any { return new(work) }
	return tk, nil
}

// markControlLooking gives the control type to tokens whose text llama.cpp
// recognises as end-of-turn or end-of-text markers whatever their stored
// type, so that special-token parsing sees them as llama.cpp does.
func markControlLooking(tokens []string, types []int32) {
	for i, t := range tokens {
		switch t {
		case "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
			"<|end_of_text|>", "<EOT>", "_<EOT>", "<|eom_id|>":
			if types[i] != TypeControl {
				types[i] = TypeControl
			}
		}
	}
}

// tokenPiece is what a token stands for in text, llama.cpp's
// token_to_piece with special tokens rendered.
func (tk *Tokenizer) tokenPiece(text string, typ int32) []byte {
	switch typ {
	case TypeControl, TypeUnknown, TypeUserDefined:
		return []byte(text)
	case TypeByte:
		if len(text) == 6 && strings.HasPrefix(text, "<0x") && text[5] == '>' {
			if b, err := strconv.ParseUint(text[3:5], 16, 8); err == nil {
				return []byte{byte(b)}
			}
		}
		return []byte(text)
	case TypeNormal:
		if tk.model == ModelLlama {
			return []byte(strings.ReplaceAll(text, spmSpace, " "))
		}
		if raw, ok := decodeByteLevel(text); ok {
			return raw
		}
		// Outside the byte-level alphabet (llama.cpp prints a placeholder):
		// the text itself is the most useful rendering.
		return []byte(text)
	}
	return nil // unused and undefined tokens render as nothing, as in llama.cpp
}

// Encode returns the tokens of text, without BOS or EOS. The vocabulary's
// normalizer (Vocab.Normalizer) applies to the text between special tokens. Text that spells a
// control token ("<s>", "<|endoftext|>") is encoded as plain text;
// user-defined tokens are matched, as in llama.cpp's llama_tokenize with
// add_special and parse_special both false.
func (tk *Tokenizer) Encode(text string) []int32 {
	return tk.EncodeSpecial(text, false, false)
}

// EncodeSpecial is llama.cpp's llama_tokenize: addSpecial adds BOS and EOS
// where the vocabulary's add_bos_token and add_eos_token say so; parseSpecial
// turns the text of control tokens into those tokens.
func (tk *Tokenizer) EncodeSpecial(text string, addSpecial, parseSpecial bool) []int32 {
	w := tk.scratch.Get().(*work)
	defer tk.release(w)

	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && tk.addBOS {
		out = append(out, tk.bos)
	}
	prevSpecial := true // the dummy space goes at the start and after each special token
	for _, f := range tk.partition(w, text, parseSpecial) {
		if f.id >= 0 {
			out = append(out, f.id)
			prevSpecial = true
			continue
		}
		if tk.spm != nil {
			text := f.text
			if tk.nfc && utf8.ValidString(text) { // invalid bytes go to byte fallback as they are
				text = nfc(text)
			}
			out = tk.spm.encode(out, text, prevSpecial, &w.spm)
		} else {
			out = tk.encodeBPE(out, f.text, w)
		}
		prevSpecial = false
	}
	if addSpecial && tk.addEOS {
		out = append(out, tk.eos)
	}
	return out
}

// release returns w to the pool unless one huge text grew its buffers:
// those are left to the garbage collector rather than kept for good.
func (tk *Tokenizer) release(w *work) {
	const keep = 1 << 16
	if cap(w.text.r) > keep || cap(w.bpe.syms) > keep || cap(w.spm.syms) > keep || cap(w.spm.buf) > 4*keep {
		return
	}
	tk.scratch.Put(w)
}

// partition cuts text at the special tokens it contains.
func (tk *Tokenizer) partition(w *work, text string, parseSpecial bool) []fragment {
	frags := append(w.frags[:0], fragment{text: text, id: -1})
	if text == "" {
		return frags[:0]
	}
	for _, sp := range tk.specials {
		if !sp.always && !parseSpecial {
			continue
		}
		if !strings.Contains(text, sp.text) {
			continue
		}
		next := w.fragsTmp[:0]
		for _, f := range frags {
			if f.id >= 0 {
				next = append(next, f)
				continue
			}
			rest := f.text
			for {
				i := strings.Index(rest, sp.text)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, fragment{text: rest[:i], id: -1})
				}
				next = append(next, fragment{id: sp.id})
				rest = rest[i+len(sp.text):]
			}
			if rest != "" {
				next = append(next, fragment{text: rest, id: -1})
			}
		}
		frags, w.fragsTmp = next, frags
	}
	w.frags = frags
	return frags
}

// encodeBPE pre-tokenizes one run of text and encodes each piece.
func (tk *Tokenizer) encodeBPE(dst []int32, text string, w *work) []int32 {
	if !utf8.ValidString(text) {
		// llama.cpp reads each invalid byte as U+FFFD and tokenizes that.
		text = replaceInvalidBytes(text)
	}
	if tk.nfc {
		text = nfc(text)
	}
	w.text.load(text)
	w.split.t = &w.text
	w.split.split(tk.bpe.pre, len(w.text.r))
	lo := 0
	for _, hi := range w.split.ends {
		piece := text[w.text.off[lo]:w.text.off[hi]]
		dst = tk.bpe.encodePiece(dst, piece, &w.bpe)
		lo = hi
	}
	return dst
}

// Decode returns the bytes ids stand for. Control and unknown tokens render
// as nothing; a vocabulary that prepends a space to text (llama) loses it
// again from the first token that renders, so Decode(Encode(s)) == s.
// Ids outside the vocabulary render as nothing.
func (tk *Tokenizer) Decode(ids []int32) []byte {
	var out []byte
	first := true
	for _, id := range ids {
		if id < 0 || int(id) >= len(tk.pieces) {
			continue
		}
		if t := tk.types[id]; t == TypeControl || t == TypeUnknown {
			continue
		}
		p := tk.pieces[id]
		if first && tk.spacePrefix && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		first = false
		out = append(out, p...)
	}
	return out
}

// TokenBytes returns what token id stands for in text: its bytes for normal
// and byte tokens, its text for control and added tokens ("<s>"). Nil for an
// id outside the vocabulary. The slice must not be modified.
func (tk *Tokenizer) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(tk.pieces) {
		return nil
	}
	return tk.pieces[id]
}

// BOS is the beginning-of-sequence token, -1 if the vocabulary has none.
func (tk *Tokenizer) BOS() int32 { return tk.bos }

// EOS is the end-of-sequence token, -1 if the vocabulary has none.
func (tk *Tokenizer) EOS() int32 { return tk.eos }

// AddBOS reports whether sequences start with BOS (add_bos_token).
func (tk *Tokenizer) AddBOS() bool { return tk.addBOS }

// AddEOS reports whether sequences end with EOS (add_eos_token).
func (tk *Tokenizer) AddEOS() bool { return tk.addEOS }

// VocabSize is the number of tokens.
func (tk *Tokenizer) VocabSize() int { return len(tk.pieces) }

// Model is the vocabulary's model name, ModelLlama or ModelGPT2.
func (tk *Tokenizer) Model() string { return tk.model }

// TokenType is the type of token id (Type*), 0 for an id outside the vocabulary.
func (tk *Tokenizer) TokenType(id int32) int32 {
	if id < 0 || int(id) >= len(tk.types) {
		return 0
	}
	return tk.types[id]
}

// replaceInvalidBytes replaces each byte that is not part of valid UTF-8
// with U+FFFD, one per byte as llama.cpp's unicode_cpts_from_utf8 does
// (strings.ToValidUTF8 would fold a run into one).
func replaceInvalidBytes(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
