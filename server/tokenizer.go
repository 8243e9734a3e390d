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
	addSpecial := req.AddSpecialTokens == nil || *req.AddSpecialTokens || s.cfg.TokenizeBOS
	toks, err := s.tokenizeSpecial(*req.Prompt, addSpecial && s.info.AddBOS)
	if err != nil {
		writeError(w, badRequest("prompt", "no_tokenizer", "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, tokenizeResponse{Count: len(toks), MaxModelLen: s.info.NCtx, Tokens: toks})
}

// tokenizeSpecial tokenizes text, reading the BOS token's text where it
// appears as that token, as a Hugging Face tokenizer reads special tokens in
// text. lm-eval-harness finds the BOS id by tokenizing tokenizer_info's
// bos_token with add_special_tokens false and taking the first id.
func (s *Server) tokenizeSpecial(text string, addBOS bool) ([]int32, error) {
	var out []int32
	if addBOS {
		out = append(out, s.info.BOS)
	}
	parts := []string{text}
	if s.bosText != "" {
		parts = strings.Split(text, s.bosText)
	}
	for i, part := range parts {
		if i > 0 {
			out = append(out, s.info.BOS)
		}
		if part == "" {
			continue
		}
		toks, err := s.model.Tokenize(part, false)
		if err != nil {
			return nil, err
		}
		out = append(out, toks...)
	}
	return out, nil
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
		"add_bos_token":    s.info.AddBOS,
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
