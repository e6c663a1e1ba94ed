package main

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"
)

// benchRuns holds go test -bench output: benchmark name (without the
// -GOMAXPROCS suffix) → unit → one value per run, in order.
type benchRuns map[string]map[string][]float64

// parseBench reads the result lines of go test -bench output, in the
// format the testing package writes: name, iterations, then value-unit
// pairs (https://go.dev/design/14313-benchmark-format).
func parseBench(r io.Reader) (benchRuns, error) {
	out := benchRuns{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if out[name] == nil {
			out[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			out[name][f[i+1]] = append(out[name][f[i+1]], v)
		}
	}
	return out, sc.Err()
}

// median of a benchmark's unit over its runs, and how many runs had it.
func (b benchRuns) median(name, unit string) (float64, int) {
	vs := slices.Clone(b[name][unit])
	if len(vs) == 0 {
		return 0, 0
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + m) / 2
	}
	return m, len(vs)
}

// spread is the lowest and highest value of a benchmark's unit.
func (b benchRuns) spread(name, unit string) (lo, hi float64) {
	vs := b[name][unit]
	if len(vs) == 0 {
		return 0, 0
	}
	return slices.Min(vs), slices.Max(vs)
}
