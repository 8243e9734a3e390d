package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/lmscore/lmscore/gguf"
)

// Model is a loaded model: its hyperparameters and its weights. Weights
// loaded from a file point into File's memory map, so they are valid until
// Close.
type Model struct {
	Config  Config
	Weights Weights
	File    *gguf.File // nil for a model built in memory
}

// Close releases the file behind the weights.
func (m *Model) Close() error {
	if m == nil || m.File == nil {
		return nil
	}
	return m.File.Close()
}

// Load opens a GGUF model file.
func Load(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// FromGGUF reads the config from f's metadata and takes every tensor by its
// llama.cpp name, checking names, shapes and types against the config. The
// weights alias f's data; the Model owns f from here on (Close closes it).
func FromGGUF(f *gguf.File) (*Model, error) {
	cfg, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	if err := checkConfigTensors(f, cfg); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, File: f}
	used := map[string]bool{}
	for _, s := range specs(cfg, &m.Weights) {
		info, ok := f.Tensor(s.name)
		if s.presence == derived {
			continue // a file tensor of that name is left over and named below
		}
		if !ok {
			if s.presence == required {
				return nil, fmt.Errorf("model: %s: missing tensor %q (%s needs it)", f.Name, s.name, cfg.Arch)
			}
			continue
		}
		if s.presence == absent {
			return nil, fmt.Errorf("model: %s: unexpected tensor %q: %s has no such tensor", f.Name, s.name, cfg.Arch)
		}
		used[s.name] = true
		t, err := tensorFromFile(f, info, s)
		if err != nil {
			return nil, err
		}
		if t.Shape != s.shape {
			return nil, fmt.Errorf("model: %s: tensor %q has shape %v, want %v (%s)", f.Name, s.name, info.Dims, s.ggufDims(), s.why)
		}
		if isRopeFactors(s.name) && t.Type != TypeF32 {
			return nil, fmt.Errorf("model: %s: tensor %q has type %s, want F32 (llama.cpp reads it as F32)", f.Name, s.name, t.Type)
		}
		*s.slot = t
	}
	if err := m.Weights.selectRopeFactors(cfg); err != nil {
		return nil, fmt.Errorf("model: %s: %w", f.Name, err)
	}
	if len(used) != len(f.Tensors) {
		var extra []string
		for _, t := range f.Tensors {
			if !used[t.Name] {
				extra = append(extra, fmt.Sprintf("%q", t.Name))
			}
		}
		sort.Strings(extra)
		if len(extra) > 5 {
			extra = append(extra[:5], fmt.Sprintf("and %d more", len(extra)-5))
		}
		return nil, fmt.Errorf("model: %s: unexpected tensors for %s with %d layers: %s", f.Name, cfg.Arch, cfg.NLayer, strings.Join(extra, ", "))
	}
	return m, nil
}

// tensorFromFile takes a tensor of the file as spec s: a tensor with s's
// GGUF dimensions gets s's (flattened) shape; any other has its own, as 2-D.
func tensorFromFile(f *gguf.File, info *gguf.TensorInfo, s tensorSpec) (*Tensor, error) {
	typ := TensorType(info.Type)
	if !typ.Supported() {
		return nil, unsupported(ErrUnsupportedType, "model: %s: tensor %q has type %s; lmscore supports %s", f.Name, info.Name, info.Type, SupportedTypesText)
	}
	shape := [2]int64{info.Dims[0], 1}
	if len(info.Dims) > 1 {
		shape[1] = info.Dims[1]
	}
	if s.dims != nil && slices.Equal(info.Dims, s.dims) {
		shape = s.shape
	} else {
		for _, d := range info.Dims[min(len(info.Dims), 2):] {
			if d != 1 {
				return nil, fmt.Errorf("model: %s: tensor %q has shape %v, want %v (%s)", f.Name, info.Name, info.Dims, s.ggufDims(), s.why)
			}
		}
	}
	data, err := f.TensorData(info.Name)
	if err != nil {
		return nil, err
	}
	t := &Tensor{Name: info.Name, Type: typ, Shape: shape, Data: data}
	if err := t.checkData(); err != nil {
		return nil, fmt.Errorf("model: %s: %w", f.Name, err)
	}
	return t, nil
}

// dimsOf is the GGUF dimension list of a shape: vectors have one.
func dimsOf(s [2]int64) []int64 {
	if s[1] == 1 {
		return []int64{s[0]}
	}
	return []int64{s[0], s[1]}
}

// Check verifies that w holds exactly cfg's tensors with the right shapes,
// supported types and data sizes.
func (w *Weights) Check(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(w.Layers) != cfg.NLayer {
		return fmt.Errorf("weights have %d layers, the config %d", len(w.Layers), cfg.NLayer)
	}
	for _, s := range specs(cfg, w) {
		t := *s.slot
		if s.presence == derived {
			// Without the long and short tensors (a model made in memory),
			// RopeFreqs is free; with them, it is the pair's chosen one.
			if t != nil && (w.RopeFactorsLong != nil || w.RopeFactorsShort != nil) && t != w.ropeFactorsFor(cfg) {
				return fmt.Errorf("tensor %q must be the LongRoPE factors that apply (see SelectRopeFactors)", s.name)
			}
			continue
		}
		switch {
		case t == nil && s.presence == required:
			return fmt.Errorf("missing tensor %q (%s needs it)", s.name, cfg.Arch)
		case t == nil:
			continue
		case s.presence == absent:
			return fmt.Errorf("unexpected tensor %q: %s has no such tensor", s.name, cfg.Arch)
		case !t.Type.Supported():
			return unsupported(ErrUnsupportedType, "tensor %q has unsupported type %s", s.name, t.Type)
		case t.Shape != s.shape:
			return fmt.Errorf("tensor %q has shape %v, want %v (%s)", s.name, t.Shape, s.shape, s.why)
		case isRopeFactors(s.name) && t.Type != TypeF32:
			return fmt.Errorf("tensor %q has type %s, want F32 (llama.cpp reads it as F32)", s.name, t.Type)
		}
		if err := t.checkData(); err != nil {
			return err
		}
	}
	if (w.RopeFactorsLong == nil) != (w.RopeFactorsShort == nil) {
		return fmt.Errorf("%s and %s come together", NameRopeFactorsLong, NameRopeFactorsShort)
	}
	return nil
}
