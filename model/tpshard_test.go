package model_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lmscore/lmscore/internal/testmodel"
	"github.com/lmscore/lmscore/model"
)

// TestTensorParallelShardTilesTheModel: the shards of every split tensor put
// back together are the tensor: column-parallel ones by rows (q, k and v,
// or gate and up, each in rank order), row-parallel ones by columns; the
// rest is shared whole.
func TestTensorParallelShardTilesTheModel(t *testing.T) {
	for _, arch := range testmodel.Arches {
		kv := 4
		if arch == model.ArchGPT2 {
			kv = 8
		}
		m, err := testmodel.New(testmodel.Options{Arch: arch, Seed: 5, NHead: 8, NHeadKV: kv, NEmbd: 64, NFF: 128, Type: model.TypeQ8_0})
		if err != nil {
			t.Fatal(err)
		}
		const size = 2
		var shards [size]*model.Model
		for r := range shards {
			if shards[r], err = model.TensorParallelShard(m, r, size); err != nil {
				t.Fatalf("%s rank %d: %v", arch, r, err)
			}
			c := shards[r].Config
			if c.NHead != 4 || c.NHeadKV != kv/2 || c.NFF != 64 || c.HeadDim() != m.Config.HeadDim() {
				t.Fatalf("%s rank %d: config %+v", arch, r, c)
			}
		}
		for l, lw := range m.Weights.Layers {
			for role, whole := range lw {
				if whole == nil {
					continue
				}
				r := model.LayerRole(role)
				parts := [size]*model.Tensor{shards[0].Weights.Layers[l][r], shards[1].Weights.Layers[l][r]}
				if split[r] && (parts[0] == whole || parts[1] == whole) {
					t.Errorf("%s layer %d %s: shared whole, want split", arch, l, r)
				}
				if !split[r] && (parts[0] != whole || parts[1] != whole) {
					t.Errorf("%s layer %d %s: split, want shared whole", arch, l, r)
				}
				var got []byte
				switch r {
				case model.WO, model.FFNDown: // row-parallel: rank 0's columns, then rank 1's, per row
					rb0, _ := parts[0].Type.RowBytes(parts[0].Shape[0])
					for row := int64(0); row < whole.Shape[1]; row++ {
						for _, p := range parts {
							got = append(got, p.Data[row*rb0:(row+1)*rb0]...)
						}
					}
				case model.WQKV, model.BQKV, model.FFNUp:
					if r == model.FFNUp && whole.Shape[1] != int64(2*m.Config.NFF) {
						got = append(append(got, parts[0].Data...), parts[1].Data...)
						break
					}
					// Each rank holds its share of every part in turn.
					got = interleave(t, parts, whole, r, m.Config)
				default:
					if parts[0] == whole && parts[1] == whole { // shared whole
						continue
					}
					got = append(append(got, parts[0].Data...), parts[1].Data...)
				}
				if !bytes.Equal(got, whole.Data) {
					t.Errorf("%s layer %d %s: the shards do not put back together", arch, l, r)
				}
			}
		}
	}
}

// split lists the roles every rank holds a share of.
var split = map[model.LayerRole]bool{
	model.WQ: true, model.WK: true, model.WV: true, model.BQ: true, model.BK: true, model.BV: true,
	model.WQKV: true, model.BQKV: true, model.WO: true, model.FFNGate: true, model.FFNUp: true,
	model.FFNUpB: true, model.FFNDown: true,
}

// interleave puts a fused tensor's shards back: q, k and v (or gate and up)
// each from rank 0 then rank 1.
func interleave(t *testing.T, parts [2]*model.Tensor, whole *model.Tensor, r model.LayerRole, c model.Config) []byte {
	hd := c.HeadDim()
	var sizes []int // each part's rows (or values) in the whole tensor
	if r == model.FFNUp {
		sizes = []int{c.NFF, c.NFF}
	} else {
		sizes = []int{c.NHead * hd, c.NHeadKV * hd, c.NHeadKV * hd}
	}
	unit := int64(len(whole.Data)) / whole.Shape[1] // bytes per row
	if whole.Shape[1] == 1 {
		unit = int64(len(whole.Data)) / whole.Shape[0] // a vector: bytes per value
	}
	var out []byte
	offsets := [2]int64{}
	for _, n := range sizes {
		for k, p := range parts {
			w := int64(n/2) * unit
			out = append(out, p.Data[offsets[k]:offsets[k]+w]...)
			offsets[k] += w
		}
	}
	return out
}

// TestTensorParallelShardRefuses names why a model does not split.
func TestTensorParallelShardRefuses(t *testing.T) {
	m, err := testmodel.New(testmodel.Options{Arch: model.ArchQwen3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	olmo := *m
	olmo.Config.Arch = model.ArchOLMo2 // q/k norms over the whole projection
	for _, c := range []struct {
		m          *model.Model
		rank, size int
		want       string
	}{
		{&olmo, 0, 2, "whole projection"},
		{m, 0, 3, "multiples of it"},
		{m, 2, 2, "rank 2 outside [0, 2)"},
	} {
		if _, err := model.TensorParallelShard(c.m, c.rank, c.size); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rank %d of %d: error %v, want one naming %q", c.rank, c.size, err, c.want)
		}
	}
}

// TestTensorParallelCheckAgreesWithShard: the check without copies refuses
// exactly the splits the shard refuses, on models of every dense family, a
// quantized one whose blocks a wide split cuts, and a mixture of experts.
func TestTensorParallelCheckAgreesWithShard(t *testing.T) {
	var models []*model.Model
	for _, arch := range testmodel.Arches {
		models = append(models, testmodel.Must(testmodel.Options{Arch: arch, Seed: 3}))
	}
	models = append(models,
		testmodel.Must(testmodel.Options{Seed: 4, Type: model.TypeQ8_0, NHead: 8, NHeadKV: 8}), // head_dim 8: 4 ways cut a block
		testmodel.MustMoE(model.ArchQwen2MoE, testmodel.Options{Seed: 5}, testmodel.Experts{N: 4, Used: 2}))
	for i, m := range models {
		for size := 1; size <= 8; size++ {
			_, shardErr := model.TensorParallelShard(m, 0, size)
			checkErr := model.TensorParallelCheck(m, size)
			if (shardErr == nil) != (checkErr == nil) {
				t.Errorf("model %d (%s), %d ranks: shard says %v, check says %v", i, m.Config.Arch, size, shardErr, checkErr)
			}
		}
	}
	if err := model.TensorParallelCheck(models[len(models)-2], 4); err == nil || !strings.Contains(err.Error(), "blocks of 32") {
		t.Errorf("a split that cuts Q8_0 blocks: %v", err)
	}
}
