// Package chart draws lmscore's pictures with gonum/plot: the prefix tree
// of a request set (`lmscore plan --plot`) and the benchmark report's
// speedups and floors (`make bench`). The layouts are plain data, computed
// apart from the drawing, so that tests check the geometry rather than
// pixels.
package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// formats are the file types Save writes, by extension.
var formats = map[string]string{".png": "png", ".svg": "svg", ".pdf": "pdf"}

// Format is the image format a path's extension names: png, svg or pdf.
// Commands call it before any work, so that a typo in the name fails at
// once rather than after a long plan.
func Format(path string) (string, error) {
	ext := strings.ToLower(filepath.Ext(path))
	f, ok := formats[ext]
	if !ok {
		return "", fmt.Errorf("plot %s: want a .png, .svg or .pdf file name", path)
	}
	return f, nil
}

// Save draws plots, a grid of rows, into one image of w by h at path (its
// format from the extension), creating the folder. gonum/plot panics on
// some inputs (a log axis over a non-positive value); Save turns that into
// an error, since library code must not abort its caller.
func Save(path string, w, h vg.Length, plots [][]*plot.Plot) (err error) {
	format, err := Format(path)
	if err != nil {
		return err
	}
	if len(plots) == 0 || len(plots[0]) == 0 {
		return fmt.Errorf("plot %s: nothing to draw", path)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plot %s: %v", path, r)
		}
	}()
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return err
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j, p := range plots[i] {
			p.Draw(canvases[i][j])
		}
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}
