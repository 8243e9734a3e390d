package bench

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/lmscore/lmscore/internal/chart"
)

// peerColors are the report's colours, one per peer, lmscore's greens.
var peerColors = map[string]color.Color{
	PeerLMScore:        color.RGBA{0x1b, 0x9e, 0x77, 0xff},
	PeerLMScoreNoCache: color.RGBA{0x66, 0xc2, 0xa5, 0xff},
	PeerHFNoCache:      color.RGBA{0xd9, 0x5f, 0x02, 0xff},
	PeerHFCatwalk:      color.RGBA{0xfc, 0x8d, 0x62, 0xff},
	PeerLlamaCpp:       color.RGBA{0x75, 0x70, 0xb3, 0xff},
}

// ModelCharts are one model's two panels: how many times faster lmscore
// (cached) is than each other peer, and each peer's wall time over the
// FLOP floor, per workload.
type ModelCharts struct {
	Speedup, WallOverFloor chart.Bars
}

// Charts lays out the report's plot, one ModelCharts per model in report
// order. A peer that did not run on a workload has no bar there (NaN); a
// peer with no bar anywhere is left out of the panel.
func (r *Report) Charts() []ModelCharts {
	var out []ModelCharts
	for _, m := range r.Models {
		var workloads []string
		for _, meta := range r.Meta {
			if meta.Model == m.Name {
				workloads = append(workloads, meta.Workload)
			}
		}
		at := map[string]int{}
		for i, w := range workloads {
			at[w] = i
		}
		series := func(value func(ReportRow) float64, skip string) []chart.BarSeries {
			var ss []chart.BarSeries
			for _, peer := range PeerOrder {
				if peer == skip {
					continue
				}
				s := chart.BarSeries{Name: peerTitles[peer], Color: peerColors[peer], Values: make([]float64, len(workloads))}
				drawn := false
				for i := range s.Values {
					s.Values[i] = math.NaN()
				}
				for _, row := range r.Rows {
					i, ok := at[row.Workload]
					if row.Model != m.Name || row.Peer != peer || row.Status != "ok" || !ok {
						continue
					}
					if v := value(row); v > 0 {
						s.Values[i], drawn = v, true
					}
				}
				if drawn {
					ss = append(ss, s)
				}
			}
			return ss
		}
		out = append(out, ModelCharts{
			Speedup: chart.Bars{
				Title:   m.Name + ": lmscore's speedup over each peer",
				YLabel:  "peer's wall / lmscore's",
				Groups:  workloads,
				Series:  series(func(row ReportRow) float64 { return row.LMScoreSpeedup }, PeerLMScore),
				RefLine: 1,
				Label:   func(v float64) string { return fmt.Sprintf("%.3gx", v) },
			},
			WallOverFloor: chart.Bars{
				Title:   m.Name + ": wall time over the FLOP floor (the unique work at the card's bf16 GEMM rate)",
				YLabel:  "wall / floor",
				Groups:  workloads,
				Series:  series(func(row ReportRow) float64 { return row.WallOverFloor }, ""),
				RefLine: 1,
			},
		})
	}
	return out
}

// WritePlot draws Charts into path (.png, .svg or .pdf): a row per model.
// A model whose panels have nothing to draw (every run failed, or no GEMM
// rate for the floor) is left out; with nothing at all it is an error.
func (r *Report) WritePlot(path string) error {
	var rows [][]*plot.Plot
	for _, mc := range r.Charts() {
		if len(mc.Speedup.Series) == 0 && len(mc.WallOverFloor.Series) == 0 {
			continue
		}
		var row []*plot.Plot
		for _, b := range []chart.Bars{mc.Speedup, mc.WallOverFloor} {
			p, err := chart.BarPlot(b)
			if err != nil {
				p = plot.New() // a blank panel keeps the grid's columns aligned
				p.Title.Text = b.Title + ": nothing measured"
			}
			row = append(row, p)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return fmt.Errorf("plot %s: no run has figures to draw", path)
	}
	return chart.Save(path, 36*vg.Centimeter, vg.Length(len(rows))*11*vg.Centimeter, rows)
}
