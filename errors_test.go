package lmscore

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/binding"
	"github.com/lmscore/lmscore/gguf"
	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// TestClassifyNativeStatuses: every status of the native core becomes its
// root sentinel; the message and the *binding.Error underneath stay.
func TestClassifyNativeStatuses(t *testing.T) {
	for status, want := range map[binding.Status]error{
		binding.StatusInvalidArgument: ErrInvalidArgument,
		binding.StatusUnsupported:     ErrUnsupported,
		binding.StatusOutOfMemory:     ErrOutOfMemory,
		binding.StatusDevice:          ErrDevice,
		binding.StatusInternal:        ErrInternal,
	} {
		native := &binding.Error{Status: status, Op: "step run", Message: "details"}
		err := fmt.Errorf("lmscore: step 3: %w", classify(native))
		assert.ErrorIs(t, err, want, status.String())
		assert.Equal(t, "lmscore: step 3: "+native.Error(), err.Error())
		var be *binding.Error
		assert.True(t, errors.As(err, &be) && be == native, "the *binding.Error is still there")
		var le *Error
		require.True(t, errors.As(err, &le))
		assert.Equal(t, want, le.Kind)
		for _, other := range []error{ErrInvalidArgument, ErrOutOfMemory, ErrDevice, ErrInternal, ErrNoCgo} {
			if other != want {
				assert.NotErrorIs(t, err, other, status.String())
			}
		}
	}
	assert.Nil(t, classify(nil))
	plain := errors.New("not native")
	assert.Same(t, plain, classify(plain))
}

// TestErrNoCgo: a binary without cgo reports lmscore.ErrNoCgo from Open
// (only such a build reaches it; with cgo the mapping itself is checked).
func TestErrNoCgo(t *testing.T) {
	assert.ErrorIs(t, classify(fmt.Errorf("wrapped: %w", binding.ErrNoCgo)), ErrNoCgo)
	m, err := OpenModel(testmodel.Must(testmodel.Options{Seed: 1}), "random", Options{Threads: 1})
	if errors.Is(err, binding.ErrNoCgo) {
		assert.ErrorIs(t, err, ErrNoCgo)
		assert.Equal(t, binding.ErrNoCgo.Error(), err.Error())
		return
	}
	require.NoError(t, err)
	m.Close()
}

// TestErrInvalidArgumentFromCore: the CPU core's refusal of inconsistent
// weights reaches the caller as ErrInvalidArgument.
func TestErrInvalidArgumentFromCore(t *testing.T) {
	w := testmodel.Must(testmodel.Options{Seed: 1})
	w.Weights.Layers = w.Weights.Layers[:1] // the config says 2 layers
	_, err := OpenModel(w, "broken", Options{Threads: 1})
	if errors.Is(err, ErrNoCgo) {
		t.Skip("needs the native CPU core (cgo)")
	}
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.ErrorContains(t, err, "layers")
}

// writeEdited writes a random llama model as GGUF with its metadata edited
// by meta and tensor name replaced by add (when set).
func writeEdited(t *testing.T, meta func(gw *gguf.Writer), name string, add func(gw *gguf.Writer)) string {
	t.Helper()
	m := testmodel.Must(testmodel.Options{Seed: 1})
	src, err := model.NewGGUFWriter(m.Config, &m.Weights)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = src.WriteTo(&buf)
	require.NoError(t, err)
	f, err := gguf.ParseBytes(buf.Bytes(), "src")
	require.NoError(t, err)
	gw := gguf.NewWriter()
	for _, kv := range f.KV {
		gw.Set(kv.Key, kv.Value)
	}
	if meta != nil {
		meta(gw)
	}
	for _, ti := range f.Tensors {
		if ti.Name == name {
			add(gw)
			continue
		}
		d, err := f.TensorData(ti.Name)
		require.NoError(t, err)
		gw.AddTensor(ti.Name, ti.Type, ti.Dims, d)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, gw.WriteFile(path))
	return path
}

// TestErrUnsupportedArch: Open and OpenMeta of a file of an architecture
// lmscore lacks; the message names it and the supported ones.
func TestErrUnsupportedArch(t *testing.T) {
	path := writeEdited(t, func(gw *gguf.Writer) { gw.Set("general.architecture", "mamba") }, "", nil)
	_, err := Open(path, Options{Threads: 1})
	_, metaErr := OpenMeta(path)
	for _, err := range []error{err, metaErr} {
		assert.ErrorIs(t, err, ErrUnsupportedArch)
		assert.ErrorIs(t, err, ErrUnsupported)
		assert.NotErrorIs(t, err, ErrUnsupportedType)
		assert.ErrorContains(t, err, `unsupported architecture "mamba" (lmscore supports gemma2, gemma3, gpt2, gptneox, llama, olmo2, phi3, qwen2, qwen2moe, qwen3, qwen3moe)`)
	}
}

// TestErrUnsupportedType: Open of a file with a Q8_1 matrix; the message
// names the type and the supported ones.
func TestErrUnsupportedType(t *testing.T) {
	path := writeEdited(t, nil, "blk.1.ffn_up.weight", func(gw *gguf.Writer) {
		gw.AddTensor("blk.1.ffn_up.weight", gguf.TensorType(9), []int64{64, 192}, make([]byte, 2*192*40))
	})
	_, err := Open(path, Options{Threads: 1})
	assert.ErrorIs(t, err, ErrUnsupportedType)
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.NotErrorIs(t, err, ErrUnsupportedArch)
	assert.ErrorContains(t, err, `tensor "blk.1.ffn_up.weight" has type Q8_1; lmscore supports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS`)
	// The same file's metadata is fine: planning needs no weights.
	meta, err := OpenMeta(path)
	require.NoError(t, err)
	meta.Close()
}
