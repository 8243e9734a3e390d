package lmscore

// TokenizeSpecial encodes text as Tokenize does, except that with
// parseSpecial the text of the vocabulary's control tokens ("<s>", "</s>",
// "<|endoftext|>") is read as those tokens, as a Hugging Face tokenizer reads
// its special tokens in text by default (llama.cpp's parse_special). addBOS
// puts BOS first when the model's vocabulary adds one.
func (m *Model) TokenizeSpecial(text string, addBOS, parseSpecial bool) ([]int32, error) {
	if m.rules.tok == nil {
		return nil, m.rules.noTokenizer()
	}
	return m.rules.tok.EncodeSpecial(text, addBOS, parseSpecial), nil
}
