package testmodel

import (
	"bytes"
	"testing"

	"github.com/lmscore/lmscore/model"
)

func TestNewIsReproducibleAndValid(t *testing.T) {
	for _, arch := range Arches {
		for _, typ := range Types {
			o := Options{Arch: arch, Seed: 7, Type: typ}
			a, err := New(o)
			if err != nil {
				t.Fatalf("%s %s: %v", arch, typ, err)
			}
			if err := a.Config.Validate(); err != nil {
				t.Fatalf("%s %s: config: %v", arch, typ, err)
			}
			if err := a.Weights.Check(a.Config); err != nil {
				t.Fatalf("%s %s: weights: %v", arch, typ, err)
			}
			b := Must(o)
			if !bytes.Equal(a.Weights.Layers[1][model.WO].Data, b.Weights.Layers[1][model.WO].Data) {
				t.Errorf("%s %s: same options gave different weights", arch, typ)
			}
			if got := a.Weights.Layers[0][model.FFNDown].Type; got != typ {
				t.Errorf("%s %s: ffn_down has type %s", arch, typ, got)
			}
			c := Must(Options{Arch: arch, Seed: 8, Type: typ})
			if bytes.Equal(a.Weights.Layers[1][model.WO].Data, c.Weights.Layers[1][model.WO].Data) {
				t.Errorf("%s %s: different seeds gave the same weights", arch, typ)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg := Options{Arch: model.ArchQwen2}.Config()
	if cfg.NLayer != 2 || cfg.NEmbd != 64 || cfg.NHead != 4 || cfg.NHeadKV != 2 || cfg.NVocab != 256 || cfg.RopeType != model.RopeNeox {
		t.Errorf("qwen2 defaults: %+v", cfg)
	}
	if cfg := (Options{Arch: model.ArchGPT2}).Config(); cfg.NHeadKV != cfg.NHead || cfg.RopeType != model.RopeNone {
		t.Errorf("gpt2 defaults: %+v", cfg)
	}
	if cfg := (Options{Arch: model.ArchQwen3}).Config(); cfg.HeadDim() != 32 || cfg.NEmbdHead != 32 || cfg.RopeType != model.RopeNeox {
		t.Errorf("qwen3 defaults: %+v, head_dim %d (want 32, twice n_embd/n_head)", cfg, cfg.HeadDim())
	}
	m := Must(Options{TiedOutput: true})
	if m.Weights.Output != nil {
		t.Error("TiedOutput kept the output matrix")
	}
}
