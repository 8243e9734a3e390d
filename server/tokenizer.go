package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// The tokenizer endpoints follow vLLM's (/tokenize, /detokenize,
// /tokenizer_info). lm-eval-harness (0.4.13) probes for exactly these and,
// when they answer, tokenizes through the server ("remote" tokenizer
// backend) instead of downloading a Hugging Face tokenizer: that is what lets
// it send this server token ids that match the model's vocabulary.

type tokenizeRequest struct {
	Model            string  `json:"model"`
	Prompt           *string `json:"prompt"`
	AddSpecialTokens *bool   `json:"add_special_tokens"`
}

type tokenizeResponse struct {
	Count       int     `json:"count"`
	MaxModelLen int     `json:"max_model_len"`
	Tokens      []int32 `json:"tokens"`
}

type detokenizeRequest struct {
	Model  string          `json:"model"`
	Tokens json.RawMessage `json:"tokens"`
}

func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	if !s.acquire(w) {
		return
	}
	defer s.release()
	var req tokenizeRequest
	if err := s.decodeSmall(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Model != "" && req.Model != s.name {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Param: "model", Code: "model_not_found",
			Message: "the model " + quote(req.Model) + " does not exist; this server serves " + quote(s.name)})
		return
	}
	if req.Prompt == nil {
		writeError(w, badRequest("prompt", "missing_prompt", "prompt is required (a string)"))
		return
	}
	toks, err := s.encodeText(*req.Prompt, req.AddSpecialTokens)
	if err != nil {
		writeError(w, badRequest("prompt", "no_tokenizer", "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, tokenizeResponse{Count: len(toks), MaxModelLen: s.info.NCtx, Tokens: toks})
}

// specialTokenizer is the optional method of a Scorer that reads the text
// of special tokens as those tokens (*lmscore.Model has it).
type specialTokenizer interface {
	TokenizeSpecial(text string, addBOS, parseSpecial bool) ([]int32, error)
}

// encodeText is the one rule by which this server tokenizes text, for
// POST /tokenize and for text prompts: Hugging Face's tokenizer with its
// defaults, as lm-eval-harness's hf backend calls it (lm_eval 0.4.13,
// models/huggingface.py HFLM.tok_encode): BOS first as Config.BOS says
// (addsBOS), and the text of special tokens read as those tokens, as a Hugging
// Face tokenizer reads them unless told split_special_tokens. addSpecial is
// /tokenize's add_special_tokens (nil when absent or for a completions
// prompt); only BOSRequest heeds it.
func (s *Server) encodeText(text string, addSpecial *bool) ([]int32, error) {
	var toks []int32
	if s.addsBOS(text, addSpecial) {
		toks = append(toks, s.info.BOS)
	}
	if st, ok := s.model.(specialTokenizer); ok {
		ids, err := st.TokenizeSpecial(text, false, true)
		if err != nil {
			return nil, err
		}
		return append(toks, ids...), nil
	}
	// A Scorer without it: the BOS token's text alone is read as BOS.
	parts := []string{text}
	if s.bosText != "" {
		parts = strings.Split(text, s.bosText)
	}
	for i, part := range parts {
		if i > 0 {
			toks = append(toks, s.info.BOS)
		}
		if part == "" {
			continue
		}
		ids, err := s.model.Tokenize(part, false)
		if err != nil {
			return nil, err
		}
		toks = append(toks, ids...)
	}
	return toks, nil
}

// addsBOS says whether text gets BOS first. HFLM.tok_encode calls the
// tokenizer with its default add_special_tokens (true: BOS when the
// tokenizer's add_bos_token says so), or with add_bos_token's value when
// that model argument is given, and with false when the text already starts
// with the BOS token's text (has_bos_prefix), which the tokenizer then reads
// as BOS. lm-eval's remote tokenizer says add_special_tokens false on every
// call, so only BOSRequest listens to it.
func (s *Server) addsBOS(text string, addSpecial *bool) bool {
	switch s.cfg.BOS {
	case BOSRequest:
		return (addSpecial == nil || *addSpecial) && s.info.AddBOS
	case BOSNever:
		return false
	}
	want := s.info.AddBOS || s.cfg.BOS == BOSAlways
	return want && !(s.bosText != "" && strings.HasPrefix(text, s.bosText))
}

func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	if !s.acquire(w) {
		return
	}
	defer s.release()
	var req detokenizeRequest
	if err := s.decodeSmall(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Tokens) == 0 {
		writeError(w, badRequest("tokens", "missing_tokens", "tokens is required (a list of token ids)"))
		return
	}
	var ids []int32
	if string(req.Tokens) != "[]" {
		var err error
		if ids, err = parseTokenIDs(req.Tokens, s.info.NVocab, "tokens"); err != nil {
			var ae *apiError
			if errors.As(err, &ae) {
				ae.Param = "tokens"
			}
			writeError(w, err)
			return
		}
	}
	text, _ := s.vocab.text(ids)
	writeJSON(w, http.StatusOK, map[string]string{"prompt": text})
}

func (s *Server) handleTokenizerInfo(w http.ResponseWriter, r *http.Request) {
	info := map[string]any{
		// lm-eval reads eos_token's presence as the sign of support; the
		// model description carries no EOS, so it is null.
		"eos_token":        nil,
		"bos_token":        nil,
		"pad_token":        nil,
		"add_bos_token":    s.info.AddBOS && s.cfg.BOS != BOSNever || s.cfg.BOS == BOSAlways,
		"model_max_length": s.info.NCtx,
		"vocab_size":       s.info.NVocab,
		"tokenizer_class":  "lmscore",
	}
	if s.bosText != "" {
		info["bos_token"] = s.bosText
	}
	writeJSON(w, http.StatusOK, info)
}

// decodeSmall reads a JSON body within the body cap into v.
func (s *Server) decodeSmall(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return badRequest("", "invalid_json", "the request body is not a valid JSON object of the expected fields: %v", err)
	}
	return nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
