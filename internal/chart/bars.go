package chart

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// BarSeries is one colour of a grouped bar chart: a value per group, NaN
// (or anything not positive, which a log axis cannot show) where there is
// no bar.
type BarSeries struct {
	Name   string
	Color  color.Color
	Values []float64
}

// Bars is a grouped bar chart on a log axis: groups along x, one bar per
// series in each.
type Bars struct {
	Title, YLabel string
	Groups        []string
	Series        []BarSeries
	// RefLine draws a horizontal line at this value (0: none), e.g. 1 for
	// a ratio.
	RefLine float64
	// Label, if set, writes each bar's value above it.
	Label func(v float64) string
}

// BarPlot draws b. It fails on a chart with nothing to show, or a series
// whose values do not match the groups.
func BarPlot(b Bars) (*plot.Plot, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range b.Series {
		if len(s.Values) != len(b.Groups) {
			return nil, fmt.Errorf("bars %q: series %q has %d values for %d groups", b.Title, s.Name, len(s.Values), len(b.Groups))
		}
		for _, v := range s.Values {
			if v > 0 && !math.IsInf(v, 1) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if b.RefLine > 0 {
		lo, hi = math.Min(lo, b.RefLine), math.Max(hi, b.RefLine)
	}
	if math.IsInf(lo, 1) {
		return nil, fmt.Errorf("bars %q: no positive value to draw", b.Title)
	}
	p := plot.New()
	p.Title.Text = b.Title
	p.Y.Label.Text = b.YLabel
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(bars{b})
	p.NominalX(b.Groups...)
	// The log axis starts below the lowest bar, so that it shows, and
	// leaves the top 40% of the panel to the legend, over no bar.
	p.Y.Min = lo / 2
	p.Y.Max = math.Exp(math.Log(p.Y.Min) + (math.Log(hi*2)-math.Log(p.Y.Min))/0.6)
	p.X.Min, p.X.Max = -0.5, float64(len(b.Groups))-0.5
	for _, s := range b.Series {
		p.Legend.Add(s.Name, swatch{s.Color})
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Millimeter * 2
	return p, nil
}

// bars is the plotter: gonum's BarChart draws from zero, which a log axis
// cannot place.
type bars struct{ b Bars }

func (bs bars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	n := len(bs.b.Series)
	width := 0.8 / float64(max(n, 1))
	label := text.Style{Color: color.Black, Font: plot.DefaultFont, Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YBottom}
	label.Font.Size = vg.Points(7)
	for k, s := range bs.b.Series {
		for g, v := range s.Values {
			if !(v > 0) || math.IsInf(v, 1) {
				continue
			}
			x := float64(g) + (float64(k)-float64(n-1)/2)*width
			x0, x1 := trX(x-width/2), trX(x+width/2)
			y0, y1 := trY(p.Y.Min), trY(v)
			c.FillPolygon(s.Color, c.ClipPolygonXY([]vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}))
			if bs.b.Label != nil {
				c.FillText(label, vg.Point{X: (x0 + x1) / 2, Y: y1 + vg.Points(1)}, bs.b.Label(v))
			}
		}
	}
	if bs.b.RefLine > 0 {
		y := trY(bs.b.RefLine)
		c.StrokeLine2(draw.LineStyle{Color: color.Black, Width: vg.Points(0.8)}, c.Min.X, y, c.Max.X, y)
	}
}

func (bs bars) DataRange() (xmin, xmax, ymin, ymax float64) {
	return -0.5, float64(len(bs.b.Groups)) - 0.5, 1, 1 // BarPlot sets the y range
}
