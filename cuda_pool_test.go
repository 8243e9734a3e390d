package lmscore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// A Pool on CUDA scores as one device does, bit for bit: over every
// visible device, or, with one, over two contexts on it (two KV pools on
// one GPU, the same code path). A device past the last is refused by name.
func TestPoolCUDABitwise(t *testing.T) {
	lib := cudaLib(t)
	n := VisibleCUDADevices()
	if n < 1 {
		t.Skipf("no CUDA device visible (count %d)", n)
	}
	opts := testmodel.Options{Seed: 21, NLayer: 2, NEmbd: 128, NHead: 4, NVocab: 300, NCtx: 256}
	o := Options{Backend: "cuda", CUDALibrary: lib, KVMemory: 256 << 20}
	reqs := randomRequests(78, 300, 300)
	want := scoreAll(t, openTest(t, testmodel.Must(opts), o), reqs, ScoreOptions{})

	devices := make([]int, max(n, 2))
	for i := range devices {
		devices[i] = i % n
	}
	var members []*Model
	for _, d := range devices {
		mo := o
		mo.Device = d
		members = append(members, openTest(t, testmodel.Must(opts), mo))
	}
	p, err := NewPool(members...)
	require.NoError(t, err)
	assert.Equal(t, devices, p.Devices())
	for _, so := range []ScoreOptions{{}, {NoCache: true}} {
		got, st, err := p.Score(context.Background(), reqs, so)
		require.NoError(t, err)
		requireBitwise(t, want, got, "pool on CUDA devices")
		t.Logf("%d members on %d devices (no cache %v): computed %d tokens, unique %d, %v", len(devices), n, so.NoCache, st.ComputedTokens, st.UniqueTokens, st.Wall)
	}

	w := testmodel.Must(opts)
	path := filepath.Join(t.TempDir(), "pool.gguf")
	require.NoError(t, model.WriteGGUF(path, w.Config, &w.Weights))
	_, err = OpenPool(path, o, []int{0, n})
	var de *DeviceError
	require.ErrorAs(t, err, &de, "device %d of %d", n, n)
	assert.Equal(t, n, de.Device)
	t.Logf("device %d of %d: %v", n, n, err)
}
