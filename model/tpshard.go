package model

import "fmt"

// TensorParallelShard returns rank's shard of m for a tensor-parallel group
// of size ranks, as lmscore.h's lmscore_tp_group describes it (Megatron's
// split): each rank holds n_head/size query heads, n_head_kv/size KV heads
// and n_ff/size FFN columns. The q, k, v, gate and up projections keep the
// shard's output rows (column-parallel), the output and down projections
// its input columns (row-parallel), and norms, embeddings, the LM head and
// the two projections' biases (added once, after the ranks' sum) are whole.
//
// The shard's tensors slice m's data where the rows it keeps are
// contiguous and copy the rest; its File is nil, so closing it releases
// nothing: close m. Mixtures of experts and q/k norms over the whole
// projection are refused; so is a split that does not divide the heads,
// KV heads or FFN width, or that cuts a quantized row inside a block.
func TensorParallelShard(m *Model, rank, size int) (*Model, error) {
	if rank < 0 || rank >= size {
		return nil, fmt.Errorf("tensor parallel: rank %d outside [0, %d)", rank, size)
	}
	if err := TensorParallelCheck(m, size); err != nil {
		return nil, err
	}
	if size == 1 {
		return m, nil
	}
	c := m.Config
	hd := c.HeadDim()
	nq, nkv, ff := c.NHead*hd, c.NHeadKV*hd, c.NFF
	sq, skv, sff := nq/size, nkv/size, ff/size // a shard's share of each
	sc := c
	sc.NHead, sc.NHeadKV, sc.NFF, sc.NEmbdHead = c.NHead/size, c.NHeadKV/size, c.NFF/size, hd
	s := &Model{Config: sc, Weights: m.Weights}
	s.Weights.Layers = make([][LayerRoleCount]*Tensor, len(m.Weights.Layers))
	for l, lw := range m.Weights.Layers {
		out := lw // whole unless split below
		var err error
		split := func(r LayerRole, f func(*Tensor) (*Tensor, error)) {
			if err != nil || lw[r] == nil {
				return
			}
			out[r], err = f(lw[r])
		}
		rows := func(parts ...[2]int) func(*Tensor) (*Tensor, error) {
			return func(t *Tensor) (*Tensor, error) { return rowRanges(t, parts) }
		}
		values := func(parts ...[2]int) func(*Tensor) (*Tensor, error) {
			return func(t *Tensor) (*Tensor, error) { return valueRanges(t, parts) }
		}
		q := [2]int{rank * sq, (rank + 1) * sq}
		k := [2]int{nq + rank*skv, nq + (rank+1)*skv}
		v := [2]int{nq + nkv + rank*skv, nq + nkv + (rank+1)*skv}
		f := [2]int{rank * sff, (rank + 1) * sff}
		kv := [2]int{rank * skv, (rank + 1) * skv}
		split(WQ, rows(q))
		split(WK, rows(kv))
		split(WV, rows(kv))
		split(BQ, values(q))
		split(BK, values(kv))
		split(BV, values(kv))
		split(WQKV, rows(q, k, v))
		split(BQKV, values(q, k, v))
		split(WO, func(t *Tensor) (*Tensor, error) { return columns(t, q[0], q[1]) })
		split(FFNGate, rows(f))
		if lw[FFNUp] != nil && lw[FFNUp].Shape[1] == int64(2*ff) { // gate and up fused, gate first
			split(FFNUp, rows(f, [2]int{ff + f[0], ff + f[1]}))
		} else {
			split(FFNUp, rows(f))
		}
		split(FFNUpB, values(f))
		split(FFNDown, func(t *Tensor) (*Tensor, error) { return columns(t, f[0], f[1]) })
		if err != nil {
			return nil, fmt.Errorf("tensor parallel %d, rank %d, layer %d: %w", size, rank, l, err)
		}
		s.Weights.Layers[l] = out
	}
	return s, nil
}

// TensorParallelCheck says whether m splits over size ranks, and if not
// why, without copying anything: the rules TensorParallelShard follows.
func TensorParallelCheck(m *Model, size int) error {
	c := m.Config
	switch {
	case size < 1:
		return fmt.Errorf("tensor parallel %d: want at least 1", size)
	case size == 1:
		return nil
	case c.NExpert > 0:
		return fmt.Errorf("tensor parallel: %s is a mixture of experts, which is not split across ranks", c.Arch)
	case c.QKNorm() == QKNormFull:
		return fmt.Errorf("tensor parallel: %s norms q and k over the whole projection, which is not split across ranks", c.Arch)
	case c.NHead%size != 0 || c.NHeadKV%size != 0 || c.NFF%size != 0:
		return fmt.Errorf("tensor parallel %d: n_head %d, n_head_kv %d and n_ff %d must all be multiples of it",
			size, c.NHead, c.NHeadKV, c.NFF)
	}
	// The row-parallel products split their rows' values: a quantized row
	// only at its blocks.
	for l, lw := range m.Weights.Layers {
		for _, r := range []LayerRole{WO, FFNDown} {
			if t := lw[r]; t != nil {
				if bs := int64(t.Type.BlockSize()); bs > 0 && (t.Shape[0]/int64(size))%bs != 0 {
					return fmt.Errorf("tensor parallel %d: layer %d's %s rows split into blocks of %d %s values; a shard's %d values cut one",
						size, l, t.Name, bs, t.Type, t.Shape[0]/int64(size))
				}
			}
		}
	}
	return nil
}

// rowRanges returns the rows [a, b) of matrix t for each range in turn.
// One range slices t's data; several are copied together.
func rowRanges(t *Tensor, parts [][2]int) (*Tensor, error) {
	rowBytes, err := t.Type.RowBytes(t.Shape[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	if int64(len(t.Data)) < t.Shape[1]*rowBytes {
		return nil, fmt.Errorf("%s: %d bytes of data for %d rows of %d", t.Name, len(t.Data), t.Shape[1], rowBytes)
	}
	var data []byte
	n := int64(0)
	for _, p := range parts {
		a, b := int64(p[0]), int64(p[1])
		if a < 0 || b > t.Shape[1] || a >= b {
			return nil, fmt.Errorf("%s: rows [%d, %d) of %d", t.Name, a, b, t.Shape[1])
		}
		chunk := t.Data[a*rowBytes : b*rowBytes]
		if len(parts) == 1 {
			data = chunk[:len(chunk):len(chunk)]
		} else {
			data = append(data, chunk...)
		}
		n += b - a
	}
	return &Tensor{Name: t.Name, Type: t.Type, Shape: [2]int64{t.Shape[0], n}, Data: data}, nil
}

// valueRanges returns the values [a, b) of vector t (Shape {n, 1}) for each
// range in turn, copied together.
func valueRanges(t *Tensor, parts [][2]int) (*Tensor, error) {
	if t.Shape[1] != 1 {
		return nil, fmt.Errorf("%s: shape %v is not a vector", t.Name, t.Shape)
	}
	var data []byte
	n := int64(0)
	for _, p := range parts {
		c, err := columns(t, p[0], p[1])
		if err != nil {
			return nil, err
		}
		data = append(data, c.Data...)
		n += c.Shape[0]
	}
	return &Tensor{Name: t.Name, Type: t.Type, Shape: [2]int64{n, 1}, Data: data}, nil
}

// columns returns the values [a, b) of every row of t, copied. A quantized
// row splits only at its blocks' boundaries.
func columns(t *Tensor, a, b int) (*Tensor, error) {
	if a < 0 || int64(b) > t.Shape[0] || a >= b {
		return nil, fmt.Errorf("%s: columns [%d, %d) of %d", t.Name, a, b, t.Shape[0])
	}
	if bs := t.Type.BlockSize(); a%bs != 0 || b%bs != 0 {
		return nil, fmt.Errorf("%s: a %s row splits into blocks of %d values; the shard's columns [%d, %d) cut one",
			t.Name, t.Type, bs, a, b)
	}
	rowBytes, err := t.Type.RowBytes(t.Shape[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	off, err := t.Type.RowBytes(int64(a))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	width, err := t.Type.RowBytes(int64(b - a))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	if int64(len(t.Data)) < t.Shape[1]*rowBytes {
		return nil, fmt.Errorf("%s: %d bytes of data for %d rows of %d", t.Name, len(t.Data), t.Shape[1], rowBytes)
	}
	data := make([]byte, 0, t.Shape[1]*width)
	for r := int64(0); r < t.Shape[1]; r++ {
		row := t.Data[r*rowBytes:]
		data = append(data, row[off:off+width]...)
	}
	return &Tensor{Name: t.Name, Type: t.Type, Shape: [2]int64{int64(b - a), t.Shape[1]}, Data: data}, nil
}
