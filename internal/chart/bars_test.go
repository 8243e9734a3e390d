package chart

import (
	"image/color"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBarPlotAxis(t *testing.T) {
	p, err := BarPlot(Bars{Title: "t", Groups: []string{"a", "b"}, RefLine: 1,
		Series: []BarSeries{{Name: "s", Color: color.Black, Values: []float64{4, math.NaN()}}, {Name: "u", Color: color.White, Values: []float64{0, 40}}}})
	require.NoError(t, err)
	// From below the lowest value drawn (the reference line, 1) to room
	// above the highest (40) for the legend.
	assert.Equal(t, 0.5, p.Y.Min)
	assert.Greater(t, p.Y.Max, 80.0)
	assert.Equal(t, -0.5, p.X.Min)
	assert.Equal(t, 1.5, p.X.Max)

	_, err = BarPlot(Bars{Title: "t", Groups: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []float64{1, 2}}}})
	assert.ErrorContains(t, err, `series "s" has 2 values for 1 groups`)
	_, err = BarPlot(Bars{Title: "t", Groups: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []float64{math.NaN()}}}})
	assert.ErrorContains(t, err, "no positive value")
}
