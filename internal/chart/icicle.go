package chart

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/lmscore/lmscore/prefixtrie"
)

// IcicleRect is one trie node in the icicle: the requests that pass through
// it side by side (one unit of width each, in depth-first order) and the
// token positions its edge covers. Its area, Requests × (End - Start), is
// the tokens it stands for in a run without prefix sharing; with sharing
// they are computed End - Start times, once.
type IcicleRect struct {
	Node       prefixtrie.NodeID
	X0, X1     int   // the requests through the node: columns X0..X1-1
	Start, End int32 // token positions Start..End-1
	Requests   int   // X1 - X0
}

// Shared reports whether more than one request reads the node's tokens.
func (r IcicleRect) Shared() bool { return r.Requests > 1 }

// Icicle is the layout of a prefix trie: every node but the root, parents
// before children. A node's children sit side by side under it, after the
// requests that end at the node itself, so that the ends plus the
// children's widths make the node's width.
type Icicle struct {
	Rects    []IcicleRect
	Requests int   // the trie's requests: the width of the whole picture
	Depth    int32 // the longest input: the picture's height

	// SharedTokens are the distinct tokens read by more than one request,
	// OwnTokens those read by one request only; together they are the
	// trie's unique tokens (the plan's unique_tokens), computed once each.
	SharedTokens, OwnTokens int64
	// TotalTokens is the sum of the areas: every request's inputs, the
	// tokens an engine without prefix sharing computes.
	TotalTokens int64
}

// IcicleLayout lays out a frozen trie.
func IcicleLayout(t *prefixtrie.Trie) (Icicle, error) {
	if !t.Frozen() {
		return Icicle{}, fmt.Errorf("icicle: the trie is not frozen")
	}
	n := t.NumNodes()
	// Requests through each node, children before parents: a reverse
	// preorder visits every child before its parent.
	order := make([]prefixtrie.NodeID, 0, n)
	stack := []prefixtrie.NodeID{prefixtrie.Root}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		order = append(order, id)
		ch := t.Children(id)
		for i := len(ch) - 1; i >= 0; i-- {
			stack = append(stack, ch[i])
		}
	}
	through := make([]int, n)
	for i := len(order) - 1; i >= 0; i-- {
		id := order[i]
		through[id] += len(t.Ends(id))
		if p := t.Parent(id); p != prefixtrie.None {
			through[p] += through[id]
		}
	}
	lay := Icicle{Requests: through[prefixtrie.Root], Rects: make([]IcicleRect, 0, n-1)}
	x0 := make([]int, n)
	for _, id := range order { // preorder: a parent's x0 is set before its children's
		x := x0[id] + len(t.Ends(id))
		for _, c := range t.Children(id) {
			x0[c] = x
			x += through[c]
		}
		if id == prefixtrie.Root {
			continue
		}
		r := IcicleRect{Node: id, X0: x0[id], X1: x0[id] + through[id], Start: t.Start(id), End: t.End(id), Requests: through[id]}
		lay.Rects = append(lay.Rects, r)
		lay.Depth = max(lay.Depth, r.End)
		tokens := int64(r.End - r.Start)
		lay.TotalTokens += tokens * int64(r.Requests)
		if r.Shared() {
			lay.SharedTokens += tokens
		} else {
			lay.OwnTokens += tokens
		}
	}
	return lay, nil
}

// WriteIcicle draws a frozen trie's icicle into path (png, svg or pdf, by
// its extension) and returns the layout it drew.
func WriteIcicle(path string, t *prefixtrie.Trie) (Icicle, error) {
	if _, err := Format(path); err != nil {
		return Icicle{}, err
	}
	lay, err := IcicleLayout(t)
	if err != nil {
		return Icicle{}, err
	}
	return lay, Save(path, 24*vg.Centimeter, 14*vg.Centimeter, [][]*plot.Plot{{IciclePlot(lay, IcicleTitle(lay))}})
}

// Colours of the icicle: a shared prefix, and a request's own tokens.
var (
	SharedColor = color.RGBA{R: 0x1b, G: 0x9e, B: 0x77, A: 0xff}
	OwnColor    = color.RGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff}
)

// IciclePlot draws the layout: requests across, token positions down from
// the root at the top.
func IciclePlot(lay Icicle, title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "requests (depth-first order; width: requests sharing the tokens)"
	p.Y.Label.Text = "token position"
	p.Y.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	p.X.Tick.Marker = integerTicks{}
	p.Y.Tick.Marker = integerTicks{}
	p.Add(icicleRects{lay})
	// The legend sits below the deepest leaf, in room the y range leaves
	// for it, where it hides no node.
	p.Y.Max = float64(max(lay.Depth, 1)) * 1.18
	p.Legend.Add(fmt.Sprintf("shared by 2+ requests: %d tokens, computed once", lay.SharedTokens), swatch{SharedColor})
	p.Legend.Add(fmt.Sprintf("one request's own: %d tokens", lay.OwnTokens), swatch{OwnColor})
	return p
}

// IcicleTitle says what the picture shows in numbers.
func IcicleTitle(lay Icicle) string {
	ratio := 0.0
	if u := lay.SharedTokens + lay.OwnTokens; u > 0 {
		ratio = float64(lay.TotalTokens) / float64(u)
	}
	return fmt.Sprintf("prefix tree: %d requests, %d input tokens, %d unique (%.1fx)",
		lay.Requests, lay.TotalTokens, lay.SharedTokens+lay.OwnTokens, ratio)
}

// icicleRects is the plotter that fills the layout's rectangles.
type icicleRects struct{ lay Icicle }

func (ir icicleRects) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	edge := draw.LineStyle{Color: color.White, Width: vg.Points(0.3)}
	for _, r := range ir.lay.Rects {
		clr := OwnColor
		if r.Shared() {
			clr = SharedColor
		}
		x0, x1 := trX(float64(r.X0)), trX(float64(r.X1))
		y0, y1 := trY(float64(r.Start)), trY(float64(r.End))
		pts := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
		c.FillPolygon(clr, c.ClipPolygonXY(pts))
		// Edges only where they leave the fill visible: with thousands of
		// one-request columns they would paint the picture white.
		if x1-x0 > 3*edge.Width {
			c.StrokeLines(edge, c.ClipLinesXY(append(pts, pts[0]))...)
		}
	}
}

func (ir icicleRects) DataRange() (xmin, xmax, ymin, ymax float64) {
	return 0, float64(max(ir.lay.Requests, 1)), 0, float64(max(ir.lay.Depth, 1))
}

// integerTicks are gonum's default ticks without decimals: the axes count
// requests and positions.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	out := ticks[:0]
	for _, t := range ticks {
		if t.Value != math.Trunc(t.Value) {
			continue // a fractional tick of a short axis
		}
		if t.Label != "" {
			t.Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
		out = append(out, t)
	}
	return out
}

// swatch is a legend entry: a square of one colour.
type swatch struct{ color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(s.Color, pts)
}
