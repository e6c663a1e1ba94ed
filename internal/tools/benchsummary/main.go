// Command benchsummary writes the one summary of a make bench run: the
// sidecar benchmarks before and after (benchstat), the heap per sidecar,
// the xDS push at scale, the knee of the canary sweep and the catalog's
// wall time, each beside the goal issue #14 sets. It reads the files make
// bench leaves in -dir, writes -dir/summary.md and prints it. It exits 1
// when a scenario of the run failed, after writing the summary.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// The files make bench writes into its folder.
const (
	sidecarBaseFile = "sidecar-base.txt" // the hop and throughput benchmarks at -base
	sidecarNewFile  = "sidecar-new.txt"  // the same at the working tree
	benchstatFile   = "benchstat.txt"    // benchstat of the two
	heapFile        = "heap.txt"         // BenchmarkSidecarHeap
	pushFile        = "push.txt"         // BenchmarkPushToFullACK
	scenariosDir    = "scenarios"        // the benchmark scenarios' run folder
	catalogDir      = "catalog"          // the catalog's run folder
	summaryFile     = "summary.md"
)

func main() {
	dir := flag.String("dir", "", "the make bench run folder")
	base := flag.String("base", "", "the baseline's git ref, as the summary names it")
	knee := flag.String("knee", "canary-knee", "the benchmark scenario whose capacity check is the knee")
	parallel := flag.Int("parallel", 0, "how many catalog scenarios ran at once, as the summary says")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: benchsummary -dir RUNFOLDER [-base REF] [-knee SCENARIO] [-parallel N]")
		os.Exit(2)
	}
	var b bytes.Buffer
	failed := write(&b, inputs{dir: *dir, base: *base, knee: *knee, parallel: *parallel})
	if err := os.WriteFile(filepath.Join(*dir, summaryFile), b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchsummary:", err)
		os.Exit(1)
	}
	_, _ = os.Stdout.Write(b.Bytes())
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "benchsummary: %d scenario(s) failed\n", failed)
		os.Exit(1)
	}
}
